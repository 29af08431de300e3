namespace FastPool.Protocol;

/// <summary>How a parameter or column value is encoded: 0 text, 1 binary (55.1.3 "Formats and Format Codes").</summary>
public enum FormatCode : short
{
    Text = 0,
    Binary = 1,
}

/// <summary>What a Describe or Close names: a prepared statement ('S') or a portal ('P') (55.7 Describe, Close).</summary>
public enum TargetKind : byte
{
    Statement = (byte)'S',
    Portal = (byte)'P',
}

namespace FastPool.Protocol;

/// <summary>CopyInResponse, CopyOutResponse or CopyBothResponse (55.7): the overall format and one format per column.</summary>
public readonly struct CopyResponseMessage
{
    internal CopyResponseMessage(FormatCode overallFormat, FormatCodeList columnFormats)
    {
        OverallFormat = overallFormat;
        ColumnFormats = columnFormats;
    }

    /// <summary>Text or binary for the whole COPY; with text, every column format is text too (55.7 CopyInResponse).</summary>
    public FormatCode OverallFormat { get; }

    public FormatCodeList ColumnFormats { get; }
}

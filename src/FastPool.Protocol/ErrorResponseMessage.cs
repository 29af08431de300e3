using System.Buffers;

namespace FastPool.Protocol;

/// <summary>Field type codes of ErrorResponse and NoticeResponse (55.8 "Error and Notice Message Fields").</summary>
public enum ErrorFieldType : byte
{
    /// <summary>Localized severity; always present.</summary>
    LocalizedSeverity = (byte)'S',

    /// <summary>Severity, never localized (PostgreSQL 9.6 and later).</summary>
    Severity = (byte)'V',

    /// <summary>SQLSTATE code; always present.</summary>
    Code = (byte)'C',

    /// <summary>Primary message; always present.</summary>
    Message = (byte)'M',
    Detail = (byte)'D',
    Hint = (byte)'H',
    Position = (byte)'P',
    InternalPosition = (byte)'p',
    InternalQuery = (byte)'q',
    Where = (byte)'W',
    SchemaName = (byte)'s',
    TableName = (byte)'t',
    ColumnName = (byte)'c',
    DataTypeName = (byte)'d',
    ConstraintName = (byte)'n',
    File = (byte)'F',
    Line = (byte)'L',
    Routine = (byte)'R',
}

/// <summary>One field of an ErrorResponse or NoticeResponse: its type byte and its String value (55.8).</summary>
public readonly struct ErrorField
{
    internal ErrorField(ErrorFieldType type, ReadOnlySequence<byte> value)
    {
        Type = type;
        Value = value;
    }

    /// <summary>The type byte; unknown types may appear and are to be ignored (55.8).</summary>
    public ErrorFieldType Type { get; }

    public ReadOnlySequence<byte> Value { get; }
}

/// <summary>
/// ErrorResponse or NoticeResponse (55.7): fields of Byte1 type + String value, ended by a zero byte. Validated
/// when read; foreach yields each <see cref="ErrorField"/> without allocating.
/// </summary>
public readonly struct ErrorResponseMessage
{
    private readonly ReadOnlySequence<byte> _body;

    internal ErrorResponseMessage(ReadOnlySequence<byte> body)
    {
        _body = body;
    }

    /// <summary>Finds a field's value; false when the message lacks it.</summary>
    public bool TryGetField(ErrorFieldType type, out ReadOnlySequence<byte> value)
    {
        foreach (var field in this)
        {
            if (field.Type == type)
            {
                value = field.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>The fields as strings, for errors FastPool handles itself; allocates (see <see cref="BackendMessageReader.ReadErrorFields"/>).</summary>
    public ErrorFields ToErrorFields() => BackendMessageReader.ReadErrorFields(_body);

    public Enumerator GetEnumerator() => new(_body);

    public ref struct Enumerator
    {
        private SequenceReader<byte> _reader;
        private ErrorField _current;

        internal Enumerator(ReadOnlySequence<byte> body)
        {
            _reader = new SequenceReader<byte>(body);
            _current = default;
        }

        public readonly ErrorField Current => _current;

        public bool MoveNext()
        {
            // A zero type byte ends the list (55.7 ErrorResponse); the body was validated, so the value is there.
            if (!_reader.TryRead(out byte type) || type == 0)
            {
                return false;
            }

            _reader.TryReadTo(out ReadOnlySequence<byte> value, 0);
            _current = new ErrorField((ErrorFieldType)type, value);
            return true;
        }
    }
}

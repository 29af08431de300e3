using System.Buffers;

namespace FastPool.Protocol;

/// <summary>
/// One length-prefixed value: a Bind parameter, a FunctionCall argument or result, a DataRow column. The wire
/// form is an Int32 length, -1 meaning NULL with no bytes after it, then the bytes (55.7 Bind, DataRow).
/// </summary>
public readonly struct FieldValue
{
    internal FieldValue(int length, ReadOnlySequence<byte> data)
    {
        Length = length;
        Data = data;
    }

    /// <summary>The length as sent: -1 for NULL, otherwise the byte count (which may be 0).</summary>
    public int Length { get; }

    public bool IsNull => Length < 0;

    /// <summary>The value's bytes as a slice of the message; empty for NULL.</summary>
    public ReadOnlySequence<byte> Data { get; }

    internal static FieldValue Null => new(-1, ReadOnlySequence<byte>.Empty);
}

/// <summary>
/// A run of length-prefixed values, validated when the message was read, so enumeration cannot fail.
/// Enumerate with foreach; nothing is copied or allocated.
/// </summary>
public readonly struct FieldValueList
{
    private readonly ReadOnlySequence<byte> _values;

    internal FieldValueList(int count, ReadOnlySequence<byte> values)
    {
        Count = count;
        _values = values;
    }

    public int Count { get; }

    /// <summary>The values as they occupy the message (length prefixes included).</summary>
    public ReadOnlySequence<byte> RawBytes => _values;

    public Enumerator GetEnumerator() => new(_values, Count);

    public ref struct Enumerator
    {
        private SequenceReader<byte> _reader;
        private int _left;
        private FieldValue _current;

        internal Enumerator(ReadOnlySequence<byte> values, int count)
        {
            _reader = new SequenceReader<byte>(values);
            _left = count;
            _current = default;
        }

        public readonly FieldValue Current => _current;

        public bool MoveNext()
        {
            if (_left == 0)
            {
                return false;
            }

            _left--;
            _reader.TryReadBigEndian(out int length);
            if (length < 0)
            {
                _current = FieldValue.Null;
                return true;
            }

            var start = _reader.Position;
            _reader.Advance(length);
            _current = new FieldValue(length, _reader.Sequence.Slice(start, _reader.Position));
            return true;
        }
    }
}

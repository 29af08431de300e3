using System.Buffers;

namespace FastPool.Protocol;

/// <summary>An array of Int16 format codes (55.7 Bind, FunctionCall, CopyInResponse), read in place.</summary>
public readonly struct FormatCodeList
{
    private readonly ReadOnlySequence<byte> _items;

    internal FormatCodeList(int count, ReadOnlySequence<byte> items)
    {
        Count = count;
        _items = items;
    }

    public int Count { get; }

    public FormatCode this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            return (FormatCode)WireReader.ReadInt16At(_items, index * 2L);
        }
    }

    /// <summary>
    /// The format that applies to value <paramref name="index"/>: no codes means
    /// all text, one code applies to every value, otherwise one code per value (55.7 Bind).
    /// </summary>
    public FormatCode For(int index) => Count switch
    {
        0 => FormatCode.Text,
        1 => this[0],
        _ => this[index],
    };
}

/// <summary>An array of Int32 object ids (55.7 Parse, ParameterDescription), read in place.</summary>
public readonly struct OidList
{
    private readonly ReadOnlySequence<byte> _items;

    internal OidList(int count, ReadOnlySequence<byte> items)
    {
        Count = count;
        _items = items;
    }

    public int Count { get; }

    /// <summary>The type oid; 0 means unspecified (55.7 Parse).</summary>
    public uint this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            return (uint)WireReader.ReadInt32At(_items, index * 4L);
        }
    }
}

/// <summary>A run of Strings (55.6), validated when the message was read; foreach yields each without its terminator.</summary>
public readonly struct CStringList
{
    private readonly ReadOnlySequence<byte> _items;

    internal CStringList(int count, ReadOnlySequence<byte> items)
    {
        Count = count;
        _items = items;
    }

    public int Count { get; }

    public Enumerator GetEnumerator() => new(_items, Count);

    public ref struct Enumerator
    {
        private SequenceReader<byte> _reader;
        private int _left;
        private ReadOnlySequence<byte> _current;

        internal Enumerator(ReadOnlySequence<byte> items, int count)
        {
            _reader = new SequenceReader<byte>(items);
            _left = count;
            _current = default;
        }

        public readonly ReadOnlySequence<byte> Current => _current;

        public bool MoveNext()
        {
            if (_left == 0)
            {
                return false;
            }

            _left--;
            _reader.TryReadTo(out _current, 0);
            return true;
        }
    }
}

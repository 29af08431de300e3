using System.Buffers;

namespace FastPool.Protocol;

/// <summary>One column of a RowDescription (55.7 RowDescription).</summary>
public readonly struct FieldDescription
{
    internal FieldDescription(ReadOnlySequence<byte> name, uint tableOid, short columnAttributeNumber, uint typeOid, short typeSize, int typeModifier, FormatCode format)
    {
        Name = name;
        TableOid = tableOid;
        ColumnAttributeNumber = columnAttributeNumber;
        TypeOid = typeOid;
        TypeSize = typeSize;
        TypeModifier = typeModifier;
        Format = format;
    }

    public ReadOnlySequence<byte> Name { get; }

    /// <summary>The table's oid when the column is a plain table column, otherwise 0 (55.7 RowDescription).</summary>
    public uint TableOid { get; }

    /// <summary>The column's attribute number in that table, otherwise 0 (55.7 RowDescription).</summary>
    public short ColumnAttributeNumber { get; }

    public uint TypeOid { get; }

    /// <summary>pg_type.typlen: negative for variable-width types (55.7 RowDescription).</summary>
    public short TypeSize { get; }

    /// <summary>pg_attribute.atttypmod, type-specific (55.7 RowDescription).</summary>
    public int TypeModifier { get; }

    /// <summary>Text or binary; always text in the answer to a Describe of a statement (55.7 RowDescription).</summary>
    public FormatCode Format { get; }
}

/// <summary>
/// RowDescription (55.7): Int16 field count, then per field a String name and 18 fixed bytes. Validated when
/// read; foreach yields each <see cref="FieldDescription"/> without allocating.
/// </summary>
public readonly struct RowDescriptionMessage
{
    // Int32 table oid, Int16 attribute number, Int32 type oid, Int16 type size, Int32 modifier, Int16 format (55.7).
    internal const int FixedFieldBytes = 4 + 2 + 4 + 2 + 4 + 2;

    private readonly ReadOnlySequence<byte> _fields;

    internal RowDescriptionMessage(int fieldCount, ReadOnlySequence<byte> fields)
    {
        FieldCount = fieldCount;
        _fields = fields;
    }

    public int FieldCount { get; }

    public Enumerator GetEnumerator() => new(_fields, FieldCount);

    public ref struct Enumerator
    {
        private SequenceReader<byte> _reader;
        private int _left;
        private FieldDescription _current;

        internal Enumerator(ReadOnlySequence<byte> fields, int count)
        {
            _reader = new SequenceReader<byte>(fields);
            _left = count;
            _current = default;
        }

        public readonly FieldDescription Current => _current;

        public bool MoveNext()
        {
            if (_left == 0)
            {
                return false;
            }

            _left--;
            _reader.TryReadTo(out ReadOnlySequence<byte> name, 0);
            WireReader.TryReadOid(ref _reader, out uint tableOid);
            _reader.TryReadBigEndian(out short attribute);
            WireReader.TryReadOid(ref _reader, out uint typeOid);
            _reader.TryReadBigEndian(out short typeSize);
            _reader.TryReadBigEndian(out int typeModifier);
            _reader.TryReadBigEndian(out short format);
            _current = new FieldDescription(name, tableOid, attribute, typeOid, typeSize, typeModifier, (FormatCode)format);
            return true;
        }
    }
}

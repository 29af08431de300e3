using System.Globalization;
using System.Text;
using FastPool.Protocol;

namespace FastPool.Proxy.Admin;

/// <summary>The column types the console answers with (pg_type OIDs; 55.7 RowDescription).</summary>
internal enum ColumnType
{
    Text = 25,
    Int4 = 23,
    Int8 = 20,

    /// <summary>PgBouncer sends statistics as numeric, so exporters never overflow a bigint.</summary>
    Numeric = 1700,
}

internal readonly record struct Column(string Name, ColumnType Type);

/// <summary>
/// Writes one result set the way a PostgreSQL server does for a simple Query: RowDescription, DataRows in text
/// format, CommandComplete (55.2.2 "Simple Query").
/// </summary>
internal sealed class ResultWriter(MessageBuilder builder)
{
    private int _columns;
    private int _written;

    public int Rows { get; private set; }

    public void Describe(ReadOnlySpan<Column> columns)
    {
        _columns = columns.Length;
        Rows = 0;
        builder.StartMessage((byte)BackendCode.RowDescription).WriteInt16((short)columns.Length);
        foreach (var c in columns)
        {
            short size = c.Type switch
            {
                ColumnType.Int4 => 4,
                ColumnType.Int8 => 8,
                _ => -1,
            };
            builder.WriteCString(c.Name)
                .WriteInt32(0)              // no table
                .WriteInt16(0)              // no column number
                .WriteInt32((int)c.Type)
                .WriteInt16(size)
                .WriteInt32(-1)             // no type modifier
                .WriteInt16(0);             // text format
        }

        builder.EndMessage();
    }

    public ResultWriter Row()
    {
        if (_written != 0)
        {
            throw new InvalidOperationException("the previous row is not finished");
        }

        builder.StartMessage((byte)BackendCode.DataRow).WriteInt16((short)_columns);
        return this;
    }

    public ResultWriter Add(string? value)
    {
        if (value is null)
        {
            builder.WriteInt32(-1);
        }
        else
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            builder.WriteInt32(bytes.Length).WriteBytes(bytes);
        }

        return Counted();
    }

    public ResultWriter Add(long value) => Add(value.ToString(CultureInfo.InvariantCulture));

    public ResultWriter Add(long? value) => value is null ? Add((string?)null) : Add(value.Value);

    public ResultWriter Add(bool value) => Add(value ? 1L : 0L);

    /// <summary>Timestamps as PgBouncer prints them; text, so every client shows them as they are.</summary>
    public ResultWriter Add(DateTimeOffset value) => Add(value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));

    public void Complete(string tag)
    {
        if (_written != 0)
        {
            // A short row would desynchronise the client; a bug here must fail loudly instead.
            throw new InvalidOperationException("the last row has fewer values than columns");
        }

        builder.StartMessage((byte)BackendCode.CommandComplete).WriteCString(tag).EndMessage();
    }

    private ResultWriter Counted()
    {
        if (++_written == _columns)
        {
            builder.EndMessage();
            _written = 0;
            Rows++;
        }

        return this;
    }
}

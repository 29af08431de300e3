using FastPool.Protocol;

namespace FastPool.Benchmarks.Infrastructure;

/// <summary>
/// Realistic wire traffic for the benchmarks, built with <see cref="MessageBuilder"/> from the layouts in
/// 55.7 "Message Formats": pgbench's tables, its default TPC-B-like script, in simple and extended protocol.
/// </summary>
internal static class WireSamples
{
    private const string Filler = "                                                                                    ";

    /// <summary>SELECT * FROM pgbench_accounts LIMIT <paramref name="rows"/>: RowDescription, DataRows, CommandComplete, ReadyForQuery.</summary>
    public static byte[] AccountsResult(int rows)
    {
        var b = new MessageBuilder(16 * 1024);
        b.StartMessage((byte)BackendCode.RowDescription).WriteInt16(4);
        Field(b, "aid", 1, 23, 4);
        Field(b, "bid", 2, 23, 4);
        Field(b, "abalance", 3, 23, 4);
        Field(b, "filler", 4, 1042, -1, 88);
        b.EndMessage();
        for (int i = 1; i <= rows; i++)
        {
            b.StartMessage((byte)BackendCode.DataRow).WriteInt16(4);
            Value(b, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Value(b, "1");
            Value(b, (i * 7 % 5000 - 2500).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Value(b, Filler);
            b.EndMessage();
        }

        b.StartMessage((byte)BackendCode.CommandComplete).WriteCString($"SELECT {rows}").EndMessage();
        b.ReadyForQuery(TransactionStatus.Idle);
        return b.Written.ToArray();
    }

    /// <summary>One extended-protocol statement as pgbench -M extended sends it: Parse, Bind, Describe, Execute, Sync.</summary>
    public static byte[] ExtendedSelect() => Messages.Encode(b => ExtendedStatement(b, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", "52341"));

    /// <summary>The statements of pgbench's default script, with the parameter values substituted.</summary>
    public static readonly (string Sql, string Extended, string[] Parameters)[] PgbenchScript =
    [
        ("BEGIN;", "BEGIN;", []),
        ("UPDATE pgbench_accounts SET abalance = abalance + -4210 WHERE aid = 52341;", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", ["-4210", "52341"]),
        ("SELECT abalance FROM pgbench_accounts WHERE aid = 52341;", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", ["52341"]),
        ("UPDATE pgbench_tellers SET tbalance = tbalance + -4210 WHERE tid = 7;", "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;", ["-4210", "7"]),
        ("UPDATE pgbench_branches SET bbalance = bbalance + -4210 WHERE bid = 1;", "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;", ["-4210", "1"]),
        ("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 52341, -4210, CURRENT_TIMESTAMP);",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);", ["7", "1", "52341", "-4210"]),
        ("END;", "END;", []),
    ];

    private static readonly string[] Tags = ["BEGIN", "UPDATE 1", "SELECT 1", "UPDATE 1", "UPDATE 1", "INSERT 0 1", "COMMIT"];

    /// <summary>What the client sends for statement <paramref name="i"/> (one socket read each, as pgbench waits for each answer).</summary>
    public static byte[] ClientStatement(int i, bool extended) => extended
        ? Messages.Encode(b => ExtendedStatement(b, PgbenchScript[i].Extended, PgbenchScript[i].Parameters))
        : Messages.Encode(b => b.Query(PgbenchScript[i].Sql));

    /// <summary>What the server answers to statement <paramref name="i"/>.</summary>
    public static byte[] ServerAnswer(int i, bool extended) => Messages.Encode(b =>
    {
        bool select = i == 2;
        if (extended)
        {
            b.StartMessage((byte)BackendCode.ParseComplete).EndMessage();
            b.StartMessage((byte)BackendCode.BindComplete).EndMessage();
            if (!select)
            {
                b.StartMessage((byte)BackendCode.NoData).EndMessage();
            }
        }

        if (select)
        {
            b.StartMessage((byte)BackendCode.RowDescription).WriteInt16(1);
            Field(b, "abalance", 3, 23, 4);
            b.EndMessage();
            b.StartMessage((byte)BackendCode.DataRow).WriteInt16(1);
            Value(b, "-4210");
            b.EndMessage();
        }

        b.StartMessage((byte)BackendCode.CommandComplete).WriteCString(Tags[i]).EndMessage();
        return b.ReadyForQuery(i == Tags.Length - 1 ? TransactionStatus.Idle : TransactionStatus.InTransaction);
    });

    private static MessageBuilder ExtendedStatement(MessageBuilder b, string sql, params string[] parameters)
    {
        // pgbench -M extended: unnamed statement and portal, text parameters, no format codes (55.7 Parse, Bind).
        b.StartMessage((byte)FrontendCode.Parse).WriteCString("").WriteCString(sql).WriteInt16(0).EndMessage();
        b.StartMessage((byte)FrontendCode.Bind).WriteCString("").WriteCString("").WriteInt16(0).WriteInt16((short)parameters.Length);
        foreach (var p in parameters)
        {
            Value(b, p);
        }

        b.WriteInt16(0).EndMessage();
        b.StartMessage((byte)FrontendCode.Describe).WriteByte((byte)'P').WriteCString("").EndMessage();
        b.StartMessage((byte)FrontendCode.Execute).WriteCString("").WriteInt32(0).EndMessage();
        return b.StartMessage((byte)FrontendCode.Sync).EndMessage();
    }

    private static void Field(MessageBuilder b, string name, short attribute, int typeOid, short size, int modifier = -1) =>
        b.WriteCString(name).WriteInt32(16396).WriteInt16(attribute).WriteInt32(typeOid).WriteInt16(size).WriteInt32(modifier).WriteInt16(0);

    private static void Value(MessageBuilder b, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        b.WriteInt32(bytes.Length).WriteBytes(bytes);
    }
}

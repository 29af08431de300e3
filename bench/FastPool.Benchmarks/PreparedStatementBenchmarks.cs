using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using BenchmarkDotNet.Attributes;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;

namespace FastPool.Benchmarks;

/// <summary>
/// Prepared statements in transaction pooling, steady state (pgbench -S -M prepared): the client sends
/// Bind/Describe/Execute/Sync of a statement it prepared earlier, FastPool rewrites the Bind's statement name into
/// its output batch and joins the batch for the send; the server's answer is scanned with the reply tracking.
/// Compared with the same transaction sent through an unnamed statement with no rewriting. Expected allocation: 0 B.
/// </summary>
[MemoryDiagnoser]
public class PreparedStatementBenchmarks
{
    private readonly ServerProtocolState _server = new();
    private ForwardingScanner _plain = new(int.MaxValue);
    private ForwardingScanner _rewriting = new(int.MaxValue);
    private PreparedStatements _prepared = null!;
    private ReadOnlySequence<byte> _preparedClient;
    private ReadOnlySequence<byte> _unnamedClient;
    private ReadOnlySequence<byte> _answer;

    [GlobalSetup]
    public void Setup()
    {
        const string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
        var owner = new Owner();
        _plain.EnablePooling(owner, statementMode: false);
        _rewriting.EnablePooling(owner, statementMode: false);
        _prepared = new PreparedStatements(owner, 200);
        _prepared.UseKnown(new KnownStatements());
        _rewriting.EnablePreparedStatements(_prepared);

        // The one-time Parse of the statement and its answer.
        var parse = new ReadOnlySequence<byte>([.. Parse("P_0", sql), .. Msg('S')]);
        _rewriting.ScanFromClient(parse, _server, out long forward, out _, out _);
        _prepared.ToServer.TryJoin(parse, forward, out _);
        var parsed = new ReadOnlySequence<byte>([.. Msg('1'), .. Msg('Z', (byte)'I')]);
        _rewriting.ScanFromServer(parsed, _server, out _, out _);

        _preparedClient = new ReadOnlySequence<byte>([.. Bind("P_0"), .. Describe(), .. Execute(), .. Msg('S')]);
        _unnamedClient = new ReadOnlySequence<byte>([.. Parse(string.Empty, sql), .. Bind(string.Empty), .. Describe(), .. Execute(), .. Msg('S')]);
        byte[] row = [0, 1, 0, 0, 0, 1, (byte)'0'];
        _answer = new ReadOnlySequence<byte>(
        [
            .. Msg('2'),
            .. Msg('T', [0, 1, .. Z("abalance"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0]),
            .. Msg('D', row),
            .. Msg('C', Z("SELECT 1")),
            .. Msg('Z', (byte)'I'),
        ]);
    }

    [Benchmark(Baseline = true, Description = "pgbench -S tx, extended (unnamed), pooled scan")]
    public long Unnamed()
    {
        _plain.ScanFromClient(_unnamedClient, _server, out long toServer, out _, out _);
        _plain.ScanFromServer(_answer, _server, out long toClient, out _);
        return toServer + toClient;
    }

    [Benchmark(Description = "pgbench -S tx, prepared: Bind rewritten and joined, replies tracked")]
    public long Prepared()
    {
        _rewriting.ScanFromClient(_preparedClient, _server, out long forward, out _, out _);
        _prepared.ToServer.TryJoin(_preparedClient, forward, out var sent);
        _rewriting.ScanFromServer(_answer, _server, out long toClient, out _);
        return sent.Length + toClient;
    }

    private static byte[] Msg(char code, params byte[] body)
    {
        var message = new byte[5 + body.Length];
        message[0] = (byte)code;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
        body.CopyTo(message, 5);
        return message;
    }

    private static byte[] Z(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private static byte[] Parse(string name, string sql) => Msg('P', [.. Z(name), .. Z(sql), 0, 1, 0, 0, 0, 23]);

    private static byte[] Bind(string name) => Msg('B', [0, .. Z(name), 0, 0, 0, 1, 0, 0, 0, 5, .. "12345"u8, 0, 0]);

    private static byte[] Describe() => Msg('D', [(byte)'P', 0]);

    private static byte[] Execute() => Msg('E', [0, 0, 0, 0, 0]);

    private sealed class Owner : IStatementOwner, IQueryInspector
    {
        public string? SearchPath => null;

        public void PinForStatement()
        {
        }

        public void InspectStatement(in ReadOnlySequence<byte> text)
        {
        }

        public bool InspectsEveryStatement => false;

        public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement) => true;

        public bool InspectBind(PreparedStatements.ClientStatement? statement) => true;
    }
}

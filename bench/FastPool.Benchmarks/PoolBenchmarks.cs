using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastPool.Benchmarks;

/// <summary>
/// The pool's hot path in transaction pooling: a client takes an idle server connection at the start of a
/// transaction and gives it back at its end (<see cref="ServerPool.AcquireAsync"/> / <see cref="ServerPool.Release"/>),
/// alone and with several threads doing the same on one pool. The connections are real loopback sockets of the
/// sockets transport, so the idle check's poll of the socket is part of the cost; nothing is sent on them.
/// One operation is one acquire plus one release. Expected allocation: 0 B.
/// </summary>
[MemoryDiagnoser]
public class PoolBenchmarks
{
    // Split evenly between the threads, so the figures are per acquire + release: time is wall time over all of them.
    private const int Operations = 16_000;

    private readonly List<Socket> _peers = [];
    private readonly List<ServerConnection> _servers = [];
    private Socket? _listener;
    private SocketTransport? _transport;
    private ServerPool _pool = null!;

    /// <summary>Threads renting from the pool at once (the pool holds default_pool_size = 20 connections, so nobody waits).</summary>
    [Params(1, 4, 16)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var config = new ProxyConfig();
        var database = new DatabaseConfig { Name = "bench" };
        _transport = new SocketTransport("benchmark");
        var manager = new PoolManager(config, TimeProvider.System, NullLogger.Instance, _transport);
        var node = new Node(0, database.Nodes[0], NodeRole.Primary);
        _pool = manager.GetPool(database, "bench", "bench", node);

        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        for (int i = 0; i < _pool.Settings.Size; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var connection = _transport.ConnectAsync(socket, _listener.LocalEndPoint!, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            _peers.Add(_listener.Accept());
            var server = new ServerConnection(connection, node, _pool, _pool.Generation, TimeProvider.System.GetTimestamp());
            _servers.Add(server);

            // A logged-in connection the pool did not open itself: released once, it sits in the idle queue.
            _pool.Release(server);
        }

        if (_pool.IdleCount != _pool.Settings.Size)
        {
            throw new InvalidOperationException($"the pool kept {_pool.IdleCount} of {_pool.Settings.Size} connections");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var server in _servers)
        {
            server.Connection.Abort();
        }

        foreach (var peer in _peers)
        {
            peer.Dispose();
        }

        _listener?.Dispose();
        _transport?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Operations, Description = "acquire + release")]
    public void RentReturn()
    {
        if (Threads == 1)
        {
            Work(0);
            return;
        }

        // Parallel.For's own few hundred bytes per invoke are shared by all the operations: the per-operation
        // figure stays under 1 B unless the pool itself allocates.
        Parallel.For(0, Threads, Work);
    }

    private void Work(int thread)
    {
        for (int i = 0; i < Operations / Threads; i++)
        {
            var pending = _pool.AcquireAsync(CancellationToken.None);
            if (!pending.IsCompletedSuccessfully)
            {
                throw new InvalidOperationException("the pool had no idle connection: the benchmark would measure a login");
            }

            _pool.Release(pending.Result);
        }
    }
}

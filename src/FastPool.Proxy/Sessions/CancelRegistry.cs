using System.Collections.Concurrent;
using System.Security.Cryptography;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// FastPool's own BackendKeyData per client, and the forwarding of a CancelRequest to the server connection
/// that client holds at that moment, with that server's real key (55.2.8 "Canceling Requests in Progress").
/// A key never reaches a server another client is using.
/// </summary>
internal sealed class CancelRegistry
{
    private readonly ConcurrentDictionary<int, ClientSession> _sessions = new();
    private readonly ILogger _logger;
    private int _nextProcessId = RandomNumberGenerator.GetInt32(1 << 20, 1 << 30);

    // Secret keys are taken from a buffer of random bytes refilled a thousand keys at a time: one call into the
    // crypto library per login was about 4% of the proxy's CPU under pgbench -C. Under the lock.
    private readonly Lock _keysLock = new();
    private readonly int[] _keys = new int[1024];
    private int _keysLeft;

    public CancelRegistry(ILogger logger)
    {
        _logger = logger;
    }

    public (int ProcessId, int SecretKey) Register(ClientSession session)
    {
        while (true)
        {
            int pid = Interlocked.Increment(ref _nextProcessId) & int.MaxValue;
            if (pid != 0 && _sessions.TryAdd(pid, session))
            {
                return (pid, NextSecretKey());
            }
        }
    }

    private int NextSecretKey()
    {
        lock (_keysLock)
        {
            if (_keysLeft == 0)
            {
                RandomNumberGenerator.Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_keys.AsSpan()));
                _keysLeft = _keys.Length;
            }

            // Taken keys do not stay in memory.
            int key = _keys[--_keysLeft];
            _keys[_keysLeft] = 0;
            return key;
        }
    }

    public void Unregister(int processId) => _sessions.TryRemove(processId, out _);

    public async Task ForwardAsync(StartupPacket request, string remote)
    {
        if (!_sessions.TryGetValue(request.CancelProcessId, out var session) || !session.KeyMatches(request.CancelSecretKey))
        {
            Log.CancelRequest(_logger, remote, "for an unknown key ignored");
            return;
        }

        var server = session.TakeServerForCancel();
        if (server is null)
        {
            Log.CancelRequest(_logger, remote, "ignored: the client holds no server connection");
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            using var socket = await ServerConnector.ConnectSocketAsync(server.Node, cts.Token).ConfigureAwait(false);
            var builder = new MessageBuilder(32);
            builder.CancelRequest(server.BackendProcessId, server.BackendSecretKey);
            await socket.SendAsync(builder.Written, System.Net.Sockets.SocketFlags.None, cts.Token).ConfigureAwait(false);

            // The server answers nothing and closes the connection once it has signalled the backend (55.2.8): only
            // then may the connection serve another client.
            var sink = new byte[16];
            while (await socket.ReceiveAsync(sink, System.Net.Sockets.SocketFlags.None, cts.Token).ConfigureAwait(false) > 0)
            {
            }

            Log.CancelRequest(_logger, remote, $"forwarded to {server}");
        }
        catch (Exception ex)
        {
            Log.CancelRequest(_logger, remote, "could not be forwarded: " + ServerConnector.Describe(ex));
        }
        finally
        {
            if (server.EndCancel())
            {
                server.Pool.Release(server);
            }
        }
    }
}

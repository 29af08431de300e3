using FastPool.Protocol;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// client_idle_timeout, idle_transaction_timeout and query_timeout, as PgBouncer: a client that sends nothing for
/// that long (while not waiting for an answer) is closed; so is one idle inside a transaction, whose server is then
/// rolled back by the release path, and one whose query runs longer than query_timeout, whose server is closed. One timer per session checks a timestamp the pumps keep, so the pumps only store a
/// number per read and the timer never allocates.
/// </summary>
internal sealed partial class ClientSession
{
    private ITimer? _idleTimer;
    private long _lastActivity;
    private volatile bool _acquiring;

    private void StartIdleTimer()
    {
        var config = _context.Config;
        var shortest = Shortest(Shortest(config.ClientIdleTimeout, config.IdleTransactionTimeout), config.QueryTimeout);
        if (shortest == TimeSpan.Zero)
        {
            return;
        }

        Volatile.Write(ref _lastActivity, _runtime.Time.GetTimestamp());
        var period = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.TicksPerMillisecond * 20, TimeSpan.TicksPerSecond));
        _idleTimer = _runtime.Time.CreateTimer(static state => ((ClientSession)state!).CheckIdle(), this, period, period);
    }

    private void StopIdleTimer() => _idleTimer?.Dispose();

    private void NoteActivity()
    {
        if (_idleTimer is not null)
        {
            Volatile.Write(ref _lastActivity, _runtime.Time.GetTimestamp());
        }
    }

    private void CheckIdle()
    {
        var config = _context.Config;
        var idle = _runtime.Time.GetElapsedTime(Volatile.Read(ref _lastActivity));
        var server = _server;

        // A client waiting for its query's answer is not idle, however long the query takes; query_timeout bounds
        // how long that may be (PgBouncer: the server connection is closed and the client told "query_timeout").
        PumpExit? reason = null;
        if (_acquiring)
        {
            return;
        }

        if (server is not null && !server.Protocol.AtMessageBoundary)
        {
            long queryStart = Volatile.Read(ref _queryStartTicks);
            if (config.QueryTimeout <= TimeSpan.Zero || queryStart == 0 || _runtime.Time.GetElapsedTime(queryStart) < config.QueryTimeout)
            {
                return;
            }

            reason = PumpExit.QueryTimeout;
        }
        else if (config.IdleTransactionTimeout > TimeSpan.Zero && idle >= config.IdleTransactionTimeout
            && server is not null && server.TransactionStatus is TransactionStatus.InTransaction or TransactionStatus.Failed)
        {
            reason = PumpExit.IdleTransactionTimeout;
        }
        else if (config.ClientIdleTimeout > TimeSpan.Zero && idle >= config.ClientIdleTimeout)
        {
            reason = PumpExit.ClientIdleTimeout;
        }

        if (reason is { } exit && Interlocked.CompareExchange(ref _serverFailure, (int)exit, -1) == -1)
        {
            _idleTimer?.Dispose();
            _client.Input.CancelPendingRead();
        }
    }

    private static TimeSpan Shortest(TimeSpan a, TimeSpan b) =>
        a == TimeSpan.Zero ? b : b == TimeSpan.Zero ? a : (a < b ? a : b);
}

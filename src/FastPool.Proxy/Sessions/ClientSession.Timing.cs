using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Query and transaction durations for /metrics and SHOW STATS: one clock read when a client batch with
/// queries starts a round trip, one when the server's answer completes it, none per message.
/// </summary>
internal sealed partial class ClientSession
{
    // TimeProvider timestamps; 0 = nothing outstanding. The client pump sets them, the server pump takes them, and
    // both run at once; yet no compare-and-swap is needed: the client pump writes only over a 0 and the server pump
    // only over a start, so the two writes alternate. The worst a race does is leave one query untimed, as a
    // pipelined query whose start fell in an earlier round trip is.
    private long _queryStartTicks;
    private long _transactionStartTicks;

    /// <summary>True while session state (LISTEN, temp tables, ...) keeps this client on its server.</summary>
    public bool IsPinned => _pinned != PinReasons.None;

    /// <summary>The client pump scanned a batch holding <paramref name="queries"/> queries (before sending it).</summary>
    private void NoteQueriesSent(int queries)
    {
        if (queries > 0 && (Volatile.Read(ref _queryStartTicks) == 0 || Volatile.Read(ref _transactionStartTicks) == 0))
        {
            long now = _runtime.Time.GetTimestamp();
            if (Volatile.Read(ref _queryStartTicks) == 0)
            {
                Volatile.Write(ref _queryStartTicks, now);
            }

            if (Volatile.Read(ref _transactionStartTicks) == 0)
            {
                Volatile.Write(ref _transactionStartTicks, now);
            }
        }
    }

    /// <summary>
    /// The server pump scanned a batch and is about to forward it: the client cannot have seen the answer yet,
    /// so it cannot have started its next query, and a sequential client is timed exactly.
    /// </summary>
    private void NoteServerBatch(ServerProtocolState server, int transactions)
    {
        long queryStart = Volatile.Read(ref _queryStartTicks);
        if (queryStart == 0 || !server.AtMessageBoundary)
        {
            return;
        }

        Volatile.Write(ref _queryStartTicks, 0);

        long now = _runtime.Time.GetTimestamp();
        _traffic.QueryTime.Observe(_runtime.Time.GetElapsedTime(queryStart, now));
        if (transactions > 0)
        {
            long transactionStart = Volatile.Read(ref _transactionStartTicks);
            if (transactionStart != 0)
            {
                Volatile.Write(ref _transactionStartTicks, 0);
                _traffic.TransactionTime.Observe(_runtime.Time.GetElapsedTime(transactionStart, now));
            }
        }
    }
}

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// Holds a client that needs a server while its database is paused (admin PAUSE or KILL), until RESUME.
/// The client keeps its place: it waits here, not in the pool's line, so a paused database opens no servers.
/// query_wait_timeout bounds this wait too, as in PgBouncer: a client is not kept forever by a PAUSE nobody resumes.
/// </summary>
internal sealed class PauseStage(DatabaseControl control, Func<TimeSpan> queryWaitTimeout, TimeProvider time) : IQueryStage
{
    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        // A session-pooled client that keeps servers is between its own transactions, not asking for a new server:
        // as in plain session pooling, PAUSE waits for it to leave rather than stopping it midway.
        var resumed = context.HoldsReserved ? null : control.WhenResumed(context.Session.DatabaseName);
        return resumed is null ? next(context) : WaitThenContinueAsync(resumed, context, next);
    }

    private async ValueTask WaitThenContinueAsync(Task first, QueryContext context, QueryDelegate next)
    {
        // A new PAUSE may start between RESUME and this client's turn: check again until it is really open.
        var limit = queryWaitTimeout();
        long start = time.GetTimestamp();
        Task? resumed = first;
        while (resumed is not null)
        {
            if (limit > TimeSpan.Zero)
            {
                var left = limit - time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero || !await Completes(resumed.WaitAsync(left, time, context.Aborted)).ConfigureAwait(false))
                {
                    throw new Pooling.ServerException(Protocol.SqlState.ProtocolViolation, "query_wait_timeout", "ERROR")
                    {
                        Detail = $"database \"{context.Session.DatabaseName}\" stayed paused for {limit.TotalSeconds:0.###} s",
                    };
                }
            }
            else
            {
                await resumed.WaitAsync(context.Aborted).ConfigureAwait(false);
            }

            resumed = control.WhenResumed(context.Session.DatabaseName);
        }

        await next(context).ConfigureAwait(false);
    }

    /// <summary>False when the wait timed out (the client's own abort still throws).</summary>
    private static async Task<bool> Completes(Task wait)
    {
        try
        {
            await wait.ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

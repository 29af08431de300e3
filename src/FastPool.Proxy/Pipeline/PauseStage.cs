namespace FastPool.Proxy.Pipeline;

/// <summary>
/// Holds a client that needs a server while its database is paused (admin PAUSE or KILL), until RESUME.
/// The client keeps its place: it waits here, not in the pool's line, so a paused database opens no servers.
/// </summary>
internal sealed class PauseStage(DatabaseControl control) : IQueryStage
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
        Task? resumed = first;
        while (resumed is not null)
        {
            await resumed.WaitAsync(context.Aborted).ConfigureAwait(false);
            resumed = control.WhenResumed(context.Session.DatabaseName);
        }

        await next(context).ConfigureAwait(false);
    }
}

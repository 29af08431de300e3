using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Metrics;

/// <summary>The state of one (database, user) pool right now, as SHOW POOLS and /metrics report it.</summary>
internal sealed record PoolGauges(
    string Database, string User, int ClientsActive, int ClientsWaiting, int ServersActive, int ServersIdle, int ServersUsed,
    int ServersTested, int ServersLogin, TimeSpan MaxWait, int PinnedClients, PoolMode Mode)
{
    /// <summary>
    /// One entry per (database, user), over all nodes and any pool a reload retired but that still drains, in
    /// name order. Counted from the clients' sessions and the pools' idle lists: a snapshot, not a hot path.
    /// </summary>
    public static List<PoolGauges> Collect(ProxyRuntime runtime)
    {
        var sessions = runtime.Clients.Values.Where(c => c.LoggedIn && c.Session is not null).Select(c => c.Session!).ToList();
        long now = runtime.Time.GetTimestamp();
        var result = new List<PoolGauges>();
        foreach (var group in runtime.Pools.AllPools.GroupBy(p => (Db: p.Key.ClientDatabase, p.Key.ClientUser))
                     .OrderBy(g => g.Key.Db, StringComparer.Ordinal).ThenBy(g => g.Key.ClientUser, StringComparer.Ordinal))
        {
            var mine = sessions.Where(s => s.DatabaseName == group.Key.Db && s.User == group.Key.ClientUser).ToList();
            int waiting = mine.Count(s => s.WaitingSinceTicks != 0);
            int active = mine.Count(s => s.CurrentServer is not null);
            int total = group.Sum(p => p.TotalCount);
            var idle = group.SelectMany(p => p.IdleSnapshot().Select(s => (Pool: p, Server: s))).ToList();
            int used = idle.Count(x => x.Pool.NeedsCheckBeforeUse(x.Server));
            long oldest = mine.Where(s => s.WaitingSinceTicks != 0).Select(s => s.WaitingSinceTicks).DefaultIfEmpty(0).Min();
            var maxWait = oldest == 0 ? TimeSpan.Zero : runtime.Time.GetElapsedTime(oldest, now);
            result.Add(new PoolGauges(
                group.Key.Db, group.Key.ClientUser, mine.Count - waiting, waiting, active, idle.Count - used, used,
                ServersTested: 0, Math.Max(0, total - idle.Count - active), maxWait, mine.Count(s => s.IsPinned), group.First().Settings.Mode));
        }

        return result;
    }
}

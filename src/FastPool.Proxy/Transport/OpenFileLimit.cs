using System.Runtime.InteropServices;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The process's open-file limit (RLIMIT_NOFILE, getrlimit(2)) against what the configuration can use: every
/// client and server connection is a descriptor (two on io_uring). At startup the soft limit is raised towards
/// what is needed, up to the hard limit, and past it when the process may (root, CAP_SYS_RESOURCE), as a
/// systemd LimitNOFILE= would; the startup log says the figures, as PgBouncer's does, and warns when clients
/// beyond the limit would be refused at accept.
/// </summary>
internal static partial class OpenFileLimit
{
    private const int RLIMIT_NOFILE = 7;

    /// <summary>Room for the listeners, log files, the loops' own descriptors, the console and health checks.</summary>
    private const int Overhead = 100;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary>Descriptors the configuration can hold open at once: max_client_conn plus every pool full, per transport.</summary>
    public static long Expected(Configuration.ProxyConfig config, int descriptorsPerConnection)
    {
        long servers = 0;
        foreach (var database in config.Databases)
        {
            int perNode = (database.PoolSize ?? config.DefaultPoolSize) + (database.ReservePoolSize ?? config.ReservePoolSize);
            int limit = database.MaxDbConnections ?? config.MaxDbConnections;
            servers += (limit > 0 ? Math.Min(limit, perNode) : perNode) * (long)Math.Max(1, database.Nodes.Count);
        }

        return ((config.MaxClientConn + servers) * descriptorsPerConnection) + Overhead;
    }

    /// <summary>Raises the soft limit to <paramref name="needed"/> where it can; returns the limits in force after.</summary>
    public static (ulong Soft, ulong Hard) Raise(long needed)
    {
        if (!OperatingSystem.IsLinux())
        {
            return (ulong.MaxValue, ulong.MaxValue);
        }

        var limit = default(RLimit);
        if (getrlimit(RLIMIT_NOFILE, ref limit) != 0)
        {
            return (ulong.MaxValue, ulong.MaxValue);
        }

        ulong wanted = (ulong)Math.Max(needed, 0);
        if (limit.Current >= wanted)
        {
            return (limit.Current, limit.Maximum);
        }

        if (limit.Maximum < wanted)
        {
            // Past the hard limit only with the privilege for it; fs.nr_open still caps that.
            var raised = new RLimit { Current = wanted, Maximum = wanted };
            if (setrlimit(RLIMIT_NOFILE, ref raised) == 0)
            {
                return (wanted, wanted);
            }
        }

        var soft = new RLimit { Current = Math.Min(wanted, limit.Maximum), Maximum = limit.Maximum };
        return setrlimit(RLIMIT_NOFILE, ref soft) == 0 ? (soft.Current, soft.Maximum) : (limit.Current, limit.Maximum);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, ref RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, ref RLimit limit);
}

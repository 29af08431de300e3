using System.Runtime.InteropServices;

namespace FastPool.Hosting;

/// <summary>
/// A proxy started from a script runs in the script's session, and Linux's scheduler (autogroup, see
/// sched(7) "The autogroup feature") then shares one CPU slice between the proxy and everything else the
/// script started, such as the load generator it is serving: measured on 2 cores, that costs about a third
/// more context switches per transaction than the same proxy in a session of its own. A daemon (pgbouncer -d,
/// fastpool -d) or a systemd service is in a session of its own; this gives a proxy started in the background
/// the same footing. Not done when standard input is a terminal, so Ctrl-C in a shell still reaches it.
/// </summary>
internal static partial class OwnSession
{
    public static void EnterWhenDetached()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("FASTPOOL_KEEP_SESSION") == "1")
        {
            return;
        }

        try
        {
            if (isatty(0) == 0)
            {
                // Fails harmlessly (EPERM) when FastPool already leads a process group, e.g. a shell's job.
                _ = setsid();
            }
        }
        catch (EntryPointNotFoundException)
        {
        }
        catch (DllNotFoundException)
        {
        }
    }

    [LibraryImport("libc")]
    private static partial int setsid();

    [LibraryImport("libc")]
    private static partial int isatty(int fd);
}

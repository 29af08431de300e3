using System.Runtime.InteropServices;

namespace FastPool.Hosting;

/// <summary>
/// PgBouncer's <c>-u USERNAME</c>: a proxy started as root (by an init script) gives up root for that user's
/// identity, groups included, before it reads its configuration or opens a file or a socket, so everything it
/// creates (pidfile, logfile, unix socket) belongs to that user.
/// </summary>
internal static partial class UserSwitch
{
    /// <summary>Null once running as <paramref name="user"/>; otherwise why not.</summary>
    public static string? AssumeIdentity(string user)
    {
        nint entry = getpwnam(user);
        if (entry == 0)
        {
            return $"user \"{user}\" does not exist";
        }

        // struct passwd (pwd.h, glibc x86-64/arm64): char *pw_name; char *pw_passwd; uid_t pw_uid; gid_t pw_gid; ...
        uint uid = (uint)Marshal.ReadInt32(entry, 2 * IntPtr.Size);
        uint gid = (uint)Marshal.ReadInt32(entry, (2 * IntPtr.Size) + sizeof(uint));
        uint current = geteuid();
        if (current == uid)
        {
            return null;
        }

        if (current != 0)
        {
            return $"cannot change to user \"{user}\": only root can (running as uid {current})";
        }

        // Groups first, then the group, then the user: once the user is set, the rest is no longer allowed.
        if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        {
            return $"cannot change to user \"{user}\": {Marshal.GetLastPInvokeErrorMessage()}";
        }

        return null;
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getpwnam(string name);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int initgroups(string user, uint group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setgid(uint gid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setuid(uint uid);
}

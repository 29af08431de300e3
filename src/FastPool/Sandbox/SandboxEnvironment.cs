namespace FastPool.Sandbox;

/// <summary>
/// The throwaway backend set behind <c>fastpool --sandbox</c>: one primary plus one streaming hot standby
/// in a fresh temp directory. Deliberately light (no pgbench data): callers load what they need.
/// </summary>
internal sealed class SandboxEnvironment : IAsyncDisposable
{
    private const string DirectoryPrefix = "fastpool-sandbox-";

    private int _disposed;

    private SandboxEnvironment(string directory, PgCluster primary, PgCluster standby)
    {
        Directory = directory;
        Primary = primary;
        Standby = standby;
    }

    /// <summary>Temp directory holding data directories, logs and unix sockets; removed on dispose.</summary>
    public string Directory { get; }

    public PgCluster Primary { get; }

    public PgCluster Standby { get; }

    public static Task<SandboxEnvironment> CreateAsync(CancellationToken ct) => CreateAsync(null, ct);

    public static async Task<SandboxEnvironment> CreateAsync(PgClusterOptions? options, CancellationToken ct)
    {
        // CreateTempSubdirectory picks a unique random name atomically; PgCluster then opens it up
        // (0755, chown postgres when we are root) so the server binaries can work in it.
        var directory = System.IO.Directory.CreateTempSubdirectory(DirectoryPrefix).FullName;
        PgCluster? primary = null;
        try
        {
            primary = await PgCluster.StartPrimaryAsync(directory, options, ct).ConfigureAwait(false);
            var standby = await primary.AddStandbyAsync(ct).ConfigureAwait(false);
            return new SandboxEnvironment(directory, primary, standby);
        }
        catch
        {
            if (primary is not null)
            {
                // Stops whatever started and deletes the directory.
                await primary.DisposeAsync().ConfigureAwait(false);
            }
            else if (System.IO.Directory.Exists(directory))
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Stops the standby and the primary and deletes <see cref="Directory"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Standby.DisposeAsync().ConfigureAwait(false);

        // The primary owns the base directory: disposing it removes everything.
        await Primary.DisposeAsync().ConfigureAwait(false);
    }
}

using FastPool.IntegrationTests.Protocol;

namespace FastPool.IntegrationTests.Infrastructure;

/// <summary>
/// A program some tests need that the machine may lack (chromium, redis-server): installed, when missing, by the
/// project's own script under tools/ (apt-get), as .ci/run does before the tests.
/// </summary>
internal static class DebianTool
{
    /// <summary>Null when <paramref name="command"/> is on PATH (after running tools/<paramref name="script"/> if it was not); else why not.</summary>
    public static string? EnsureInstalled(string command, string script, string package)
    {
        if (OnPath(command))
        {
            return null;
        }

        var path = Path.Combine(RepositoryRoot(), "tools", script);
        try
        {
            var result = ProtocolTestSupport.RunToolAsync("bash", [path], TimeSpan.FromMinutes(9)).GetAwaiter().GetResult();
            return OnPath(command) ? null
                : $"Debian's {package} could not be installed by tools/{script} (exit {result.ExitCode}): {result.StandardError.Trim()}";
        }
        catch (Exception ex)
        {
            return $"Debian's {package} could not be installed by tools/{script}: " + ex.Message;
        }
    }

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, name)));

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FastPool.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("FastPool.sln not found above " + AppContext.BaseDirectory);
    }
}

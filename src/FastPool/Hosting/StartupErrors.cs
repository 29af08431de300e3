namespace FastPool.Hosting;

/// <summary>Why a file FastPool needs (logfile, pidfile) could not be used, in words (native AOT drops .NET's messages).</summary>
internal static class StartupErrors
{
    public static string Describe(Exception ex) => ex switch
    {
        DirectoryNotFoundException => "its directory does not exist",
        FileNotFoundException => "it does not exist",
        UnauthorizedAccessException => "permission denied",
        PathTooLongException => "the path is too long",
        IOException io when io.HResult != 0 => $"I/O error ({io.GetType().Name})",
        _ => ex.GetType().Name,
    };
}

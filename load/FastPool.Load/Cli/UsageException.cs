namespace FastPool.Load.Cli;

/// <summary>Bad input the user can fix (arguments, targets, scripts): printed as one line, exit code 2.</summary>
internal sealed class UsageException : Exception
{
    public UsageException()
    {
    }

    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

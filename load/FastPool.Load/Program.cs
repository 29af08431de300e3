using FastPool.Load.Cli;

namespace FastPool.Load;

internal static class Program
{
    private static Task<int> Main(string[] args) => LoadApp.InvokeAsync(args, Console.Out, Console.Error);
}

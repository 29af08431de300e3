using BenchmarkDotNet.Running;

namespace FastPool.Benchmarks;

internal static class Program
{
    // dotnet run -c Release --project bench/FastPool.Benchmarks -- --filter '*'
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}

using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using BenchmarkDotNet.Attributes;

namespace FastPool.Benchmarks;

/// <summary>
/// Result-cache keys. <see cref="CacheLookupHit"/> is the cache's own path: its key is the session prefix
/// (database, user, settings state) followed by the request's wire bytes (Query, or Parse/Bind/Describe/Execute
/// with the parameter values), hashed and compared by <c>ResultCache</c>'s byte comparer on a hit. The XxHash
/// rows hash the same inputs with System.IO.Hashing for comparison. One operation is one key.
/// Expected allocation: 0 B (inputs are hashed in place, a hit returns the stored array).
/// </summary>
[MemoryDiagnoser]
public class CacheKeyBenchmarks
{
    private readonly XxHash3 _hash64 = new();
    private readonly XxHash128 _hash128 = new();
    private byte[] _sql = [];
    private byte[][] _parameters = [];
    private string _database = "bench";
    private string _user = "app";
    private string _settings = string.Empty;
    private readonly FastPool.Cache.ResultCache _cache = new(FastPool.Cache.CacheLimits.Default);
    private byte[] _cacheKey = [];

    [Params("pgbench-select", "orm-select", "report")]
    public string Statement { get; set; } = "pgbench-select";

    [GlobalSetup]
    public void Setup()
    {
        (string sql, string[] parameters) = Statement switch
        {
            "pgbench-select" => ("SELECT abalance FROM pgbench_accounts WHERE aid = $1", (string[])["52341"]),
            "orm-select" => (
                "SELECT u.\"Id\", u.\"Name\", u.\"Email\", o.\"Total\" FROM \"Users\" AS u LEFT JOIN \"Orders\" AS o ON o.\"UserId\" = u.\"Id\" WHERE u.\"Email\" = $1 AND o.\"Created\" > $2 ORDER BY o.\"Created\" DESC LIMIT $3",
                ["someone@example.com", "2026-01-01 00:00:00+00", "10"]),
            _ => (string.Concat(Enumerable.Repeat("SELECT bid, count(*), sum(abalance), avg(abalance) FROM pgbench_accounts WHERE bid BETWEEN $1 AND $2 GROUP BY bid UNION ALL ", 12)) + "SELECT 0, 0, 0, 0", ["1", "10"]),
        };
        _sql = Encoding.UTF8.GetBytes(sql);
        _parameters = [.. parameters.Select(Encoding.UTF8.GetBytes)];
        _database = "bench";
        _user = "app";
        _settings = "search_path=\"$user\", public;TimeZone=UTC;DateStyle=ISO, MDY;client_encoding=UTF8;standard_conforming_strings=on";

        // Prefix and request bytes as one array, as the session builds it; a stored entry so the lookup is a hit.
        var key = new List<byte>();
        key.AddRange(Encoding.UTF8.GetBytes(_database + "\0" + _user + "\0" + _settings + "\0"));
        key.AddRange(_sql);
        foreach (var value in _parameters)
        {
            key.AddRange(value);
        }

        _cacheKey = [.. key];
        _cache.TryAdd([.. _cacheKey], new byte[200], _database, ["pgbench_accounts"], _cache.BeginCapture());
    }

    [Benchmark(Description = "ResultCache lookup, hit (the cache's own key: session prefix + request bytes)")]
    public int CacheLookupHit() => _cache.TryGet(_cacheKey)?.Length ?? throw new InvalidOperationException("not cached");

    [Benchmark(Baseline = true, Description = "XxHash3 (64-bit) of statement + parameters + session")]
    public ulong XxHash3Key()
    {
        _hash64.Reset();
        Append(_hash64);
        return _hash64.GetCurrentHashAsUInt64();
    }

    [Benchmark(Description = "XxHash128 of statement + parameters + session")]
    public UInt128 XxHash128Key()
    {
        _hash128.Reset();
        Append(_hash128);
        return _hash128.GetCurrentHashAsUInt128();
    }

    private void Append(NonCryptographicHashAlgorithm hash)
    {
        // Strings hashed as their UTF-16 bytes, in place; every variable-length part is preceded by its length so
        // ("ab", "c") and ("a", "bc") give different keys.
        AppendString(hash, _database);
        AppendString(hash, _user);
        AppendString(hash, _settings);
        AppendBytes(hash, _sql);
        foreach (var value in _parameters)
        {
            AppendBytes(hash, value);
        }
    }

    private static void AppendString(NonCryptographicHashAlgorithm hash, string value) =>
        AppendBytes(hash, MemoryMarshal.AsBytes(value.AsSpan()));

    private static void AppendBytes(NonCryptographicHashAlgorithm hash, ReadOnlySpan<byte> value)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, value.Length);
        hash.Append(length);
        hash.Append(value);
    }
}

using FastPool.Routing.Classification;

namespace FastPool.Proxy.Configuration;

public static partial class ConfigLoader
{
    private sealed partial class Builder
    {
        /// <summary>The result-cache keys of [fastpool]; false for any other key.</summary>
        private bool TryApplyCache(IniEntry e, string key)
        {
            var cache = _fastPool.Cache;
            string value = Unquote(e.Value);
            switch (key)
            {
                case "memory_cache_enabled":
                    if (TryBool(e, key, out var enabled))
                    {
                        cache = cache with { Enabled = enabled };
                    }

                    break;
                case "memqcache_method":
                    switch (value.Trim().ToLowerInvariant())
                    {
                        case "memory":
                        case "shmem":
                            // Pgpool-II's name for its shared-memory store: FastPool's is in-process memory.
                            cache = cache with { Method = CacheMethod.Memory };
                            break;
                        case "redis":
                            cache = cache with { Method = CacheMethod.Redis };
                            break;
                        default:
                            InvalidValue(e, key, e.Value, "memory, redis");
                            break;
                    }

                    break;
                case "memqcache_redis":
                    cache = cache with { Redis = value.Trim().Length == 0 ? null : value.Trim() };
                    break;
                case "memqcache_total_size":
                    if (TrySize(e, key, value, 1024, out var total))
                    {
                        cache = cache with { Limits = cache.Limits with { TotalSize = total } };
                    }

                    break;
                case "memqcache_maxcache":
                    if (TrySize(e, key, value, 0, out var max) && max <= int.MaxValue)
                    {
                        cache = cache with { Limits = cache.Limits with { MaxEntrySize = (int)max } };
                    }

                    break;
                case "memqcache_expire":
                    if (ConfigValues.TryParseCInteger(value, out var seconds) && seconds >= 0)
                    {
                        cache = cache with { Limits = cache.Limits with { Expire = TimeSpan.FromSeconds(seconds) } };
                    }
                    else if (TryTime(e, key, value, out var expire))
                    {
                        cache = cache with { Limits = cache.Limits with { Expire = expire } };
                    }

                    break;
                case "cache_safe_memqcache_table_list":
                    cache = cache with { SafeTables = TableSet(value) };
                    break;
                case "cache_unsafe_memqcache_table_list":
                    cache = cache with { UnsafeTables = TableSet(value) };
                    break;
                case "memqcache_volatile_function_list":
                    cache = cache with { VolatileFunctions = new FunctionList(CacheClassifier.DefaultVolatileNames.Concat(SplitList(value, ','))) };
                    break;
                default:
                    return false;
            }

            _fastPool = _fastPool with { Cache = cache };
            return true;
        }

        private static HashSet<string> TableSet(string value) =>
            new(SplitList(value, ',').Select(CacheClassifier.NormalizeName), StringComparer.Ordinal);

        /// <summary>Bytes, as a number or with a kB/MB/GB suffix (Pgpool-II accepts both).</summary>
        private bool TrySize(IniEntry e, string key, string value, long min, out long bytes)
        {
            var text = value.Trim();
            long unit = 1;
            foreach (var (suffix, factor) in new[] { ("kB", 1024L), ("MB", 1024L * 1024), ("GB", 1024L * 1024 * 1024), ("k", 1024L), ("M", 1024L * 1024), ("G", 1024L * 1024 * 1024) })
            {
                if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
                {
                    text = text[..^suffix.Length].Trim();
                    unit = factor;
                    break;
                }
            }

            if (ConfigValues.TryParseCInteger(text, out var number) && number >= 0 && number <= long.MaxValue / unit && number * unit >= min)
            {
                bytes = number * unit;
                return true;
            }

            InvalidValue(e, key, e.Value, $"a size in bytes of at least {min}, optionally with kB, MB or GB");
            bytes = 0;
            return false;
        }
    }
}

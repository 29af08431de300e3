namespace FastPool.Cache;

/// <summary>
/// The three Lua scripts of the shared store. Each runs atomically in Redis (EVAL: no other command runs in
/// between), so a check and the write it guards cannot be split by another FastPool's invalidation.
/// </summary>
/// <remarks>
/// Keys, per server database D (the text before the first NUL of a cache key):
/// <c>fastpool:s:D</c> the invalidation sequence (an integer; created from Redis's clock, in microseconds, so a
/// Redis that lost it starts above every number handed out before); <c>fastpool:d:D</c> the sequence of D's last
/// whole-database invalidation; <c>fastpool:v:D NUL R</c> the sequence of relation R's last invalidation; and
/// <c>fastpool:e:KEY</c> an entry, a hash of <c>a</c> (the sequence its capture began at), <c>r</c> (the relations
/// it read, separated by byte 1) and <c>b</c> (the response). An entry is served only while every version it
/// depends on exists and is not newer than <c>a</c>: an evicted version key makes its entries misses, never stale.
/// </remarks>
internal static class RedisScripts
{
    /// <summary>KEYS: entry, sequence, database version. ARGV: version key prefix. Returns {1, response} or {0, sequence}.</summary>
    public const string Lookup = """
        local s = redis.call('GET', KEYS[2])
        if not s then
          local t = redis.call('TIME')
          s = t[1] .. string.format('%06d', tonumber(t[2]))
          redis.call('SET', KEYS[2], s)
        end
        local e = redis.call('HMGET', KEYS[1], 'a', 'r', 'b')
        if e[3] then
          local at = tonumber(e[1])
          local ok = at <= tonumber(s)
          local d = redis.call('GET', KEYS[3])
          if not d or tonumber(d) > at then ok = false end
          if ok then
            for rel in string.gmatch(e[2], '[^\1]+') do
              local v = redis.call('GET', ARGV[1] .. rel)
              if not v or tonumber(v) > at then ok = false break end
            end
          end
          if ok then return {1, e[3]} end
          redis.call('DEL', KEYS[1])
        end
        return {0, s}
        """;

    /// <summary>
    /// KEYS: entry, sequence, database version. ARGV: version key prefix, capture sequence, relations (byte 1
    /// between), response, time to live in ms (0: none). Stores unless something it read was invalidated since
    /// the capture began; a missing version key is created at the current sequence (never older than the truth).
    /// </summary>
    public const string Store = """
        local at = tonumber(ARGV[2])
        local s = redis.call('GET', KEYS[2])
        if not s or tonumber(s) < at then return 0 end
        local d = redis.call('GET', KEYS[3])
        if not d then redis.call('SET', KEYS[3], s) d = s end
        if tonumber(d) > at then return 0 end
        for rel in string.gmatch(ARGV[3], '[^\1]+') do
          local k = ARGV[1] .. rel
          local v = redis.call('GET', k)
          if not v then redis.call('SET', k, s) v = s end
          if tonumber(v) > at then return 0 end
        end
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'a', ARGV[2], 'r', ARGV[3], 'b', ARGV[4])
        if ARGV[5] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
        return 1
        """;

    /// <summary>
    /// KEYS: sequence, database version. ARGV: version key prefix, channel, message, then the relations (none:
    /// the whole database). Takes the next sequence number, stamps it on what was written, and tells the other
    /// FastPool instances.
    /// </summary>
    public const string Invalidate = """
        if not redis.call('GET', KEYS[1]) then
          local t = redis.call('TIME')
          redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
        end
        redis.call('INCR', KEYS[1])
        local n = redis.call('GET', KEYS[1])
        if #ARGV == 3 then
          redis.call('SET', KEYS[2], n)
        else
          for i = 4, #ARGV do redis.call('SET', ARGV[1] .. ARGV[i], n) end
        end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """;
}

namespace FastPool.Proxy;

/// <summary>
/// Admin-set state of databases (PAUSE, KILL, DISABLE), separate from the config snapshot so that a reload
/// neither clears nor depends on it. Names are the database names clients connect with.
/// </summary>
internal sealed class DatabaseControl
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, TaskCompletionSource> _paused = new(StringComparer.Ordinal);
    private readonly HashSet<string> _disabled = new(StringComparer.Ordinal);
    private TaskCompletionSource? _pausedAll;
    private object? _suspended;

    // Read without the lock on every server acquisition: zero means nothing is paused, the common case.
    private volatile int _pauseCount;

    public bool AllPaused
    {
        get
        {
            lock (_lock)
            {
                return _pausedAll is not null;
            }
        }
    }

    /// <summary>SUSPEND is in effect: nothing new is accepted and every request for a server waits (until RESUME).</summary>
    public bool IsSuspended => Volatile.Read(ref _suspended) is not null;

    /// <summary>
    /// SUSPEND: everything is paused at once (requests for servers wait in the pause gate until RESUME), without
    /// waiting for servers in use to be released and without closing idle ones. False when already suspended.
    /// </summary>
    public bool Suspend()
    {
        lock (_lock)
        {
            if (_suspended is not null)
            {
                return false;
            }

            _suspended = new object();
            if (_pausedAll is null)
            {
                _pausedAll = NewGate();
                _pauseCount++;
            }

            return true;
        }
    }

    /// <summary>A task that completes when <paramref name="database"/> is resumed, or null when it is not paused.</summary>
    public Task? WhenResumed(string database)
    {
        if (_pauseCount == 0)
        {
            return null;
        }

        lock (_lock)
        {
            if (_pausedAll is not null)
            {
                return _pausedAll.Task;
            }

            return _paused.TryGetValue(database, out var tcs) ? tcs.Task : null;
        }
    }

    public bool IsPaused(string database) => WhenResumed(database) is not null;

    /// <summary>Pauses one database, or all with null; false when it already was.</summary>
    public bool Pause(string? database)
    {
        lock (_lock)
        {
            if (database is null)
            {
                if (_pausedAll is not null)
                {
                    return false;
                }

                _pausedAll = NewGate();
            }
            else
            {
                if (_paused.ContainsKey(database))
                {
                    return false;
                }

                _paused[database] = NewGate();
            }

            _pauseCount++;
            return true;
        }
    }

    /// <summary>Resumes one database, or with null everything paused (globally or per database); false when nothing was paused.</summary>
    public bool Resume(string? database)
    {
        List<TaskCompletionSource> released = [];
        bool suspendEnded = false;
        lock (_lock)
        {
            if (database is null)
            {
                if (_pausedAll is not null)
                {
                    released.Add(_pausedAll);
                    _pausedAll = null;
                }

                if (_suspended is not null)
                {
                    // Not a gate of its own (so not in _pauseCount): the pause of everything above is what holds requests.
                    _suspended = null;
                    suspendEnded = true;
                }

                released.AddRange(_paused.Values);
                _paused.Clear();
            }
            else if (_paused.Remove(database, out var tcs))
            {
                released.Add(tcs);
            }

            _pauseCount -= released.Count;
        }

        // Completed outside the lock; continuations run asynchronously anyway.
        foreach (var tcs in released)
        {
            tcs.TrySetResult();
        }

        return released.Count > 0 || suspendEnded;
    }

    public bool Disable(string database)
    {
        lock (_lock)
        {
            return _disabled.Add(database);
        }
    }

    public bool Enable(string database)
    {
        lock (_lock)
        {
            return _disabled.Remove(database);
        }
    }

    public bool IsDisabled(string database)
    {
        lock (_lock)
        {
            return _disabled.Count > 0 && _disabled.Contains(database);
        }
    }

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

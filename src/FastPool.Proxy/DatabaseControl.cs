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

    // Set while SUSPEND is in effect; forwarding waits for it (see ClientSession.Suspend).
    private volatile TaskCompletionSource? _suspended;

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

    /// <summary>SUSPEND is in effect: no bytes are forwarded either way and every request for a server waits (until RESUME).</summary>
    public bool IsSuspended => _suspended is not null;

    /// <summary>Null while not suspended; otherwise completes at RESUME. Read on every forward: one volatile read.</summary>
    public Task? WhenUnsuspended => _suspended?.Task;

    /// <summary>PAUSE is in effect for everything (not SUSPEND, which pauses everything too).</summary>
    public bool IsPausedAll
    {
        get
        {
            lock (_lock)
            {
                return _pausedAll is not null && _suspended is null;
            }
        }
    }

    /// <summary>
    /// SUSPEND: everything is paused at once (requests for servers wait in the pause gate until RESUME) and
    /// forwarding stops, without waiting for servers in use to be released and without closing idle ones. Refused,
    /// as PgBouncer refuses it, while anything is paused or suspended: RESUME would not know what to undo.
    /// </summary>
    public SuspendOutcome Suspend()
    {
        lock (_lock)
        {
            if (_suspended is not null || _pausedAll is not null)
            {
                return SuspendOutcome.AlreadyPaused;
            }

            if (_paused.Count > 0)
            {
                return SuspendOutcome.DatabasesPaused;
            }

            _suspended = NewGate();
            _pausedAll = NewGate();
            _pauseCount++;
            return SuspendOutcome.Suspended;
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
        TaskCompletionSource? suspendEnded = null;
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
                    // Not in _pauseCount: the pause of everything above is what holds requests; this one holds forwarding.
                    suspendEnded = _suspended;
                    _suspended = null;
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

        suspendEnded?.TrySetResult();
        return released.Count > 0 || suspendEnded is not null;
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

internal enum SuspendOutcome
{
    Suspended,

    /// <summary>PAUSE (of everything) or SUSPEND is already in effect.</summary>
    AlreadyPaused,

    /// <summary>Some databases are paused.</summary>
    DatabasesPaused,
}

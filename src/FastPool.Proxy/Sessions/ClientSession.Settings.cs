using System.Buffers;
using System.Text;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Transaction pooling without state leaks: the client's settings follow it from server to server.
/// Two kinds are tracked. Parameters the server reports with ParameterStatus (GUC_REPORT: application_name,
/// TimeZone, DateStyle, client_encoding, ...; 55.2.7) are known exactly from the messages themselves, however
/// they were changed: the values this client last saw are set on any server that reports other ones. The rest
/// (search_path in PostgreSQL 15, statement_timeout, ...) come from the startup packet and from session-level
/// SET/RESET statements the client ran, replayed verbatim; each server remembers which of those it has
/// (<see cref="ServerConnection.AppliedSettings"/>), and what differs is set or RESET in one Query before the
/// client's transaction. A SET that failed or was rolled back leaves the server's entry unknown, so it is reset
/// for whoever comes next.
/// </summary>
internal sealed partial class ClientSession : IQueryInspector
{
    /// <summary>An applied-settings entry whose value FastPool does not know (never equal to a statement).</summary>
    internal const string UnknownSetting = "\0unknown";

    // PostgreSQL 15's GUC_REPORT parameters that a client cannot set; the others are carried by their reported value.
    private static readonly HashSet<string> s_notSettable = new(StringComparer.OrdinalIgnoreCase)
    {
        "server_version", "server_encoding", "integer_datetimes", "is_superuser", "session_authorization", "in_hot_standby",
    };

    // GUC_REPORT parameters (PostgreSQL docs 55.2.7 lists them): tracked from ParameterStatus, not from SET texts.
    private static readonly HashSet<string> s_reported = new(StringComparer.OrdinalIgnoreCase)
    {
        "application_name", "client_encoding", "datestyle", "default_transaction_read_only", "in_hot_standby",
        "integer_datetimes", "intervalstyle", "is_superuser", "server_encoding", "server_version",
        "session_authorization", "standard_conforming_strings", "timezone", "scram_iterations",
    };

    private PoolMode _mode;
    private PinReasons _pinned;
    private PinReasons _pinMask;
    private int _errorsAtStart;
    private byte[] _inspectScratch = [];
    private readonly Dictionary<string, string> _reported = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _settings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _startupSettings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _startupReported = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<SettingChange> _pending = [];
    private readonly List<SettingChange> _changes = [];

    // Savepoints of the transaction, each with how many of _pending came before it (ROLLBACK TO undoes the rest).
    private readonly List<(string Name, int Pending)> _savepoints = [];

    // The first _keptPending of _pending were committed by COMMIT AND CHAIN: a later failure or ROLLBACK leaves them.
    private int _keptPending;
    private PinReasons _pendingUnpin;

    // SessionStateKey of _reported and _settings; null after either changed.
    private string? _stateKey;

    private string StateKey() => _stateKey ??= SessionStateKey.Build(_reported, _settings);

    /// <summary>Whether the server already has exactly this client's settings and reported parameters.</summary>
    private bool SameStateAs(ServerConnection server) => string.Equals(StateKey(), server.StateKey(), StringComparison.Ordinal);

    /// <summary>The pooling mode of this client's pool and, for the pooling modes, the client's startup settings.</summary>
    private void InitPooling(PoolMode mode)
    {
        _mode = mode;
        InitReserving(mode);

        // In session pooling the client owns its servers: state that cannot follow it pins it, whatever pin_* say.
        _pinMask = _reserving ? PinReasons.All | PinReasons.Untracked : _context.Config.FastPool.Pins | PinReasons.Untracked;
        if (!PerTransaction)
        {
            return;
        }

        var ignored = _context.Config.IgnoreStartupParameters;
        foreach (var (name, value) in ClientSettings)
        {
            if (ignored.Contains(name, StringComparer.OrdinalIgnoreCase) || s_nonSettings.Contains(name) || !IsSettingName(name))
            {
                continue;
            }

            if (s_reported.Contains(name))
            {
                _reported[name] = value;
                _startupReported[name] = value;
                continue;
            }

            string key = name.ToLowerInvariant();
            _startupSettings[key] = SetConfig(key, value);
        }

        foreach (var kv in _startupSettings)
        {
            _settings[kv.Key] = kv.Value;
        }

        _stateKey = null;
    }

    /// <summary>The reported values the client was welcomed with: what it believes its session has.</summary>
    private void AddWelcome(IEnumerable<KeyValuePair<string, string>> welcome)
    {
        foreach (var kv in welcome)
        {
            _reported[kv.Key] = kv.Value;
        }

        _stateKey = null;
    }

    /// <summary>A statement text as one span: itself when it lies in one segment, else copied into <paramref name="scratch"/> (kept for reuse).</summary>
    private static ReadOnlySpan<byte> Contiguous(in ReadOnlySequence<byte> sql, ref byte[] scratch)
    {
        if (sql.IsSingleSegment)
        {
            return sql.FirstSpan;
        }

        if (scratch.Length < sql.Length)
        {
            scratch = new byte[Math.Max(sql.Length, 1024)];
        }

        sql.CopyTo(scratch);
        return scratch.AsSpan(0, (int)sql.Length);
    }

    private static string SetConfig(string name, string value) =>
        "SELECT pg_catalog.set_config('" + name + "', '" + value.Replace("'", "''", StringComparison.Ordinal) + "', false)";

    /// <summary>Runs on the client pump under the swap lock, for each Query and Parse (the scanner calls it); false holds it back (routing).</summary>
    public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement)
    {
        if (namedStatement && _prepared is not null)
        {
            // A statement FastPool keeps: routed by its text here (a write is not prepared on a standby the client holds
            // for a read), its effects on the session followed when it runs (InspectStatement, at its Bind).
            return RouteCheck(sql, namedStatement: false);
        }

        if (!RouteCheck(sql, namedStatement))
        {
            return false;
        }

        InspectState(sql, namedStatement);
        return true;
    }

    /// <summary>What a statement text does to the session's state (settings, pins, prepared statements); routing aside.</summary>
    private void InspectState(in ReadOnlySequence<byte> sql, bool namedStatement)
    {
        var text = Contiguous(sql, ref _inspectScratch);
        if (_runtime.Cache is not null)
        {
            CacheNoteStatement(text, namedStatement);
        }

        var traits = SqlClassifier.Classify(text, out var pins);
        if (namedStatement)
        {
            pins |= PinReasons.Prepare;
        }

        pins &= _pinMask;
        if (pins != PinReasons.None)
        {
            SetPinned(_pinned | pins);
        }

        if (traits == QueryTraits.None)
        {
            return;
        }

        if ((traits & QueryTraits.DiscardAll) != 0)
        {
            _pendingUnpin |= PinReasons.All | PinReasons.Untracked;
        }

        // The statement drops every prepared statement of the server's session, the shared ones included.
        if ((traits & (QueryTraits.DiscardAll | QueryTraits.DeallocateAll)) != 0)
        {
            _prepared?.ForgetAll(_server!.Protocol);
        }

        _pendingUnpin |= UnpinnedBy(traits);
        if ((traits & (QueryTraits.Setting | QueryTraits.ResetAll | QueryTraits.Rollback | QueryTraits.TransactionControl | QueryTraits.SessionAuthorizationDefault)) == 0)
        {
            return;
        }

        var server = _server!;
        _changes.Clear();
        SqlClassifier.ReadSettingChanges(text, _changes);
        foreach (var change in _changes)
        {
            if (change.Event != SessionEvent.Setting)
            {
                TrackTransactionControl(change, server);
                continue;
            }

            if (change.Name is null)
            {
                foreach (var key in server.AppliedSettings.Keys.ToArray())
                {
                    if (key != SqlClassifier.RoleSetting)
                    {
                        server.AppliedSettings[key] = UnknownSetting;
                    }
                }
            }
            else if (s_reported.Contains(change.Name))
            {
                continue;
            }
            else
            {
                server.AppliedSettings[change.Name] = UnknownSetting;
            }

            _pending.Add(change);
        }

        server.AppliedSettingsChanged();
    }

    /// <summary>
    /// Which of the transaction's settings still count after a savepoint statement, a ROLLBACK or a COMMIT AND CHAIN
    /// (PostgreSQL docs, SET: the effects of SET are undone by a rollback, to a savepoint too). A rollback also ends the
    /// failure that preceded it, so errors before it no longer undo what follows.
    /// </summary>
    private void TrackTransactionControl(SettingChange change, ServerConnection server)
    {
        switch (change.Event)
        {
            case SessionEvent.Savepoint when change.Name is not null:
                _savepoints.Add((change.Name, _pending.Count));
                break;
            case SessionEvent.Release:
                int released = LastSavepoint(change.Name);
                if (released >= 0)
                {
                    _savepoints.RemoveRange(released, _savepoints.Count - released);
                }

                break;
            case SessionEvent.RollbackTo:
                int target = LastSavepoint(change.Name);
                if (target >= 0)
                {
                    DropPendingFrom(_savepoints[target].Pending);
                    _savepoints.RemoveRange(target + 1, _savepoints.Count - target - 1);
                    _errorsAtStart = server.Protocol.Errors;
                }

                break;
            case SessionEvent.Rollback:
                // UNLISTEN * and DISCARD ALL in a transaction that is rolled back did nothing.
                DropPendingFrom(_keptPending);
                _pendingUnpin = PinReasons.None;
                _savepoints.Clear();
                _errorsAtStart = server.Protocol.Errors;
                break;
            case SessionEvent.CommitChain:
                // A failed transaction's COMMIT is a rollback.
                if (server.Protocol.Errors == _errorsAtStart)
                {
                    _keptPending = _pending.Count;
                }
                else
                {
                    DropPendingFrom(_keptPending);
                }

                _savepoints.Clear();
                _errorsAtStart = server.Protocol.Errors;
                break;
        }
    }

    private int LastSavepoint(string? name)
    {
        for (int i = _savepoints.Count - 1; i >= 0; i--)
        {
            if (string.Equals(_savepoints[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private void DropPendingFrom(int index)
    {
        index = Math.Max(index, _keptPending);
        if (index < _pending.Count)
        {
            _pending.RemoveRange(index, _pending.Count - index);
        }
    }

    /// <summary>
    /// At a ReadyForQuery 'I' with nothing outstanding (under the swap lock, on the server pump): what the finished
    /// transaction changed becomes the client's, unless it failed or was rolled back; the values the server
    /// reported are what the client has now seen.
    /// </summary>
    private void CommitTransaction(ServerConnection server)
    {
        bool ok = server.Protocol.Errors == _errorsAtStart;
        bool resetAll = false;

        // A failed transaction keeps only what a COMMIT AND CHAIN committed before it failed.
        int committed = ok ? _pending.Count : _keptPending;
        if (committed > 0)
        {
            _stateKey = null;
            server.AppliedSettingsChanged();
        }

        for (int i = 0; i < committed; i++)
        {
            var change = _pending[i];
            if (change.Name is null)
            {
                // RESET ALL leaves the role as it is (a DISCARD ALL resets it with a change of its own after this one).
                resetAll = true;
                bool hadRole = _settings.TryGetValue(SqlClassifier.RoleSetting, out var role);
                bool serverHadRole = server.AppliedSettings.TryGetValue(SqlClassifier.RoleSetting, out var serverRole);
                _settings.Clear();
                foreach (var kv in _startupSettings)
                {
                    _settings[kv.Key] = kv.Value;
                }

                server.AppliedSettings.Clear();
                if (hadRole)
                {
                    _settings[SqlClassifier.RoleSetting] = role!;
                }

                if (serverHadRole)
                {
                    server.AppliedSettings[SqlClassifier.RoleSetting] = serverRole!;
                }
            }
            else if (change.Statement is not null)
            {
                _settings[change.Name] = change.Statement;
                server.AppliedSettings[change.Name] = change.Statement;
            }
            else
            {
                if (_startupSettings.TryGetValue(change.Name, out var startup))
                {
                    _settings[change.Name] = startup;
                }
                else
                {
                    _settings.Remove(change.Name);
                }

                server.AppliedSettings.Remove(change.Name);
            }
        }

        if (ok && _pendingUnpin != PinReasons.None)
        {
            SetPinned(_pinned & ~_pendingUnpin);
        }

        _pending.Clear();
        _keptPending = 0;
        _savepoints.Clear();
        _pendingUnpin = PinReasons.None;
        _errorsAtStart = server.Protocol.Errors;
        if (!resetAll && SameStateAs(server))
        {
            // Nothing the server reported differs from what the client has seen (the usual transaction).
            return;
        }

        foreach (var kv in server.Parameters)
        {
            if (!_reported.TryGetValue(kv.Key, out var seen) || !string.Equals(seen, kv.Value, StringComparison.Ordinal))
            {
                _reported[kv.Key] = kv.Value;
                _stateKey = null;
            }
        }

        // RESET ALL returns a session to the values it started with, the startup packet's included (PostgreSQL
        // docs, RESET); the server went back to its own login values, which the next transaction corrects.
        if (resetAll)
        {
            foreach (var kv in _startupReported)
            {
                _reported[kv.Key] = kv.Value;
            }

            _stateKey = null;
        }
    }

    /// <summary>The pins a statement ends once it succeeds: it undid the session state that caused them.</summary>
    private static PinReasons UnpinnedBy(QueryTraits traits)
    {
        var unpin = PinReasons.None;
        if ((traits & QueryTraits.UnlistenAll) != 0)
        {
            unpin |= PinReasons.Listen;
        }

        if ((traits & QueryTraits.DeallocateAll) != 0)
        {
            unpin |= PinReasons.Prepare;
        }

        if ((traits & QueryTraits.SessionAuthorizationDefault) != 0)
        {
            unpin |= PinReasons.SessionAuthorization;
        }

        if ((traits & QueryTraits.DiscardTemp) != 0)
        {
            unpin |= PinReasons.TempTables;
        }

        if ((traits & QueryTraits.AdvisoryUnlockAll) != 0)
        {
            unpin |= PinReasons.AdvisoryLocks;
        }

        if ((traits & QueryTraits.CloseAll) != 0)
        {
            unpin |= PinReasons.HoldCursors;
        }

        return unpin;
    }

    private void SetPinned(PinReasons pins)
    {
        if ((_pinned == PinReasons.None) != (pins == PinReasons.None))
        {
            _runtime.Stats.PinnedChanged(pins != PinReasons.None);
        }

        _pinned = pins;
    }

    /// <summary>
    /// The statements that make <paramref name="server"/> look like this client's session: set_config for the
    /// reported parameters whose value differs from what the client last saw, the client's own SETs the server
    /// lacks, RESET for settings the server has and the client does not. Null when nothing differs.
    /// </summary>
    private string? BuildPooledSettingsQuery(ServerConnection server)
    {
        if (SameStateAs(server))
        {
            return null;
        }

        StringBuilder? sql = null;
        bool select = false;
        foreach (var kv in server.Parameters)
        {
            if (s_notSettable.Contains(kv.Key) || !_reported.TryGetValue(kv.Key, out var want) || string.Equals(want, kv.Value, StringComparison.Ordinal))
            {
                continue;
            }

            sql ??= new StringBuilder();
            sql.Append(select ? ", " : "SELECT ");
            select = true;
            sql.Append("pg_catalog.set_config('").Append(kv.Key).Append("', '").Append(want.Replace("'", "''", StringComparison.Ordinal)).Append("', false)");
        }

        foreach (var kv in _settings)
        {
            if (server.AppliedSettings.TryGetValue(kv.Key, out var have) && string.Equals(have, kv.Value, StringComparison.Ordinal))
            {
                continue;
            }

            sql ??= new StringBuilder();
            sql.Append(sql.Length > 0 ? "; " : string.Empty).Append(kv.Value);
        }

        foreach (var kv in server.AppliedSettings)
        {
            if (!_settings.ContainsKey(kv.Key))
            {
                sql ??= new StringBuilder();
                sql.Append(sql.Length > 0 ? "; " : string.Empty).Append("RESET ").Append(QuoteName(kv.Key));
            }
        }

        return sql?.ToString();
    }

    /// <summary>After the settings query ran: the server now has exactly the client's settings.</summary>
    private void SettingsApplied(ServerConnection server)
    {
        server.AppliedSettings.Clear();
        foreach (var kv in _settings)
        {
            server.AppliedSettings[kv.Key] = kv.Value;
        }

        server.AppliedSettingsChanged();
    }

    /// <summary>A parameter name for RESET: dotted parts (custom.option) quoted one by one when needed.</summary>
    private static string QuoteName(string name)
    {
        if (IsSettingName(name))
        {
            return name;
        }

        return string.Join('.', name.Split('.').Select(part => "\"" + part.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
    }
}

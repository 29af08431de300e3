namespace FastPool.Routing.Classification;

/// <summary>What a query string does, as far as routing and session tracking need to know.</summary>
[Flags]
public enum QueryTraits : ushort
{
    None = 0,

    /// <summary>Must run on the primary: it writes, or may write, or is not understood (the safe default).</summary>
    Write = 1 << 0,

    /// <summary>BEGIN / START TRANSACTION.</summary>
    TransactionStart = 1 << 1,

    /// <summary>COMMIT / END / ROLLBACK / ABORT / PREPARE TRANSACTION (not ROLLBACK TO SAVEPOINT).</summary>
    TransactionEnd = 1 << 2,

    /// <summary>BEGIN or START TRANSACTION with READ ONLY.</summary>
    ReadOnlyTransaction = 1 << 3,

    /// <summary>The text starts with the /*NO LOAD BALANCE*/ hint.</summary>
    NoLoadBalanceHint = 1 << 4,

    /// <summary>SET / RESET / DISCARD at session level (not SET LOCAL), or set_config(..., false).</summary>
    SessionSetting = 1 << 5,

    /// <summary>CREATE TEMP[ORARY] TABLE / SEQUENCE / VIEW.</summary>
    TemporaryObject = 1 << 6,

    /// <summary>LISTEN or UNLISTEN.</summary>
    Listen = 1 << 7,

    /// <summary>More than one statement in the text.</summary>
    MultipleStatements = 1 << 8,

    /// <summary>A session advisory lock function (pg_advisory_lock family, not the _xact_ ones).</summary>
    AdvisoryLock = 1 << 9,

    /// <summary>SQL-level PREPARE.</summary>
    Prepare = 1 << 10,

    /// <summary>DECLARE ... WITH HOLD.</summary>
    HoldCursor = 1 << 11,

    /// <summary>SET SESSION AUTHORIZATION / SET ROLE.</summary>
    SessionAuthorization = 1 << 12,

    /// <summary>
    /// Uses or creates state that lives in the transaction it runs in, on the server that runs it: SAVEPOINT,
    /// RELEASE, ROLLBACK TO, DECLARE / FETCH / MOVE / CLOSE (cursors), SET LOCAL / SET TRANSACTION / SET
    /// CONSTRAINTS, DEALLOCATE. Such a statement cannot move to another server in the middle of a transaction.
    /// </summary>
    TransactionState = 1 << 13,

    /// <summary>
    /// BEGIN / START TRANSACTION asking for REPEATABLE READ or SERIALIZABLE (one snapshot, or serializable
    /// conflict tracking, for the whole transaction: it cannot span two servers) or saying READ WRITE.
    /// </summary>
    SnapshotTransaction = 1 << 14,

    /// <summary>
    /// BEGIN / START TRANSACTION asking for SERIALIZABLE: a standby cannot run it at all ("cannot use serializable
    /// mode in a hot standby", PostgreSQL docs 27.4.1 "User's Overview"), READ ONLY or not.
    /// </summary>
    SerializableTransaction = 1 << 15,
}

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The SQL of <c>fastpool cache install-triggers</c>: one trigger function, and on every ordinary and partitioned
/// table of the user's schemas a statement-level AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE trigger calling it
/// (PostgreSQL docs: CREATE TRIGGER; 43.10 "Trigger Functions"). The function sends the table's name on
/// <see cref="CacheListener.Channel"/>, and for a partition also its root's, since reads name the root.
/// Idempotent: running it again (after new tables were created) replaces what is there.
/// </summary>
internal static class CacheTriggers
{
    public const string FunctionName = "fastpool_cache_notify";

    public static string InstallSql { get; } = $$"""
        CREATE OR REPLACE FUNCTION public.{{FunctionName}}() RETURNS trigger LANGUAGE plpgsql AS $fastpool$
        DECLARE
            root regclass;
        BEGIN
            PERFORM pg_catalog.pg_notify('{{CacheListener.Channel}}', TG_TABLE_NAME);
            root := pg_catalog.pg_partition_root(TG_RELID);
            IF root IS NOT NULL AND root <> TG_RELID THEN
                PERFORM pg_catalog.pg_notify('{{CacheListener.Channel}}', (SELECT relname FROM pg_catalog.pg_class WHERE oid = root));
            END IF;
            RETURN NULL;
        END
        $fastpool$;
        DO $fastpool$
        DECLARE
            r record;
        BEGIN
            FOR r IN
                SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
            LOOP
                EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER fastpool_cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION public.{{FunctionName}}()', r.rel);
            END LOOP;
        END
        $fastpool$;
        SELECT pg_catalog.count(*)::text FROM pg_catalog.pg_trigger WHERE tgname = 'fastpool_cache_invalidate'
        """;
}

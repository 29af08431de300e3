using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Pooling;

/// <summary>What a pool's connections log in as: one (database entry, user) pair on one node.</summary>
internal sealed class PoolKey
{
    public PoolKey(DatabaseConfig database, string clientDatabase, string clientUser, string? authFilePassword)
    {
        Database = database;
        ClientDatabase = clientDatabase;
        DbName = database.DbName ?? clientDatabase;
        User = database.User ?? clientUser;
        ClientUser = clientUser;
        DatabaseKey = DatabaseKeyOf(database, clientDatabase);
        Password = database.Password ?? authFilePassword;
        var parameters = new List<KeyValuePair<string, string>>
        {
            new("user", User),
            new("database", DbName),
        };

        // Per-database connect parameters, as PgBouncer sends them in the server's startup packet.
        AddIfSet(parameters, "client_encoding", database.ClientEncoding);
        AddIfSet(parameters, "datestyle", database.DateStyle);
        AddIfSet(parameters, "timezone", database.TimeZone);
        AddIfSet(parameters, "application_name", database.ApplicationName);
        StartupParameters = parameters;
    }

    public DatabaseConfig Database { get; }

    /// <summary>The database name the clients of this pool asked for (differs from the entry name under "*").</summary>
    public string ClientDatabase { get; }

    /// <summary>The database name on the server.</summary>
    public string DbName { get; }

    /// <summary>The login user on the server.</summary>
    public string User { get; }

    /// <summary>The user the clients of this pool logged in as (limits and [users] settings are per client user).</summary>
    public string ClientUser { get; }

    public string? Password { get; }

    /// <summary>Which database the pool serves, as pools, auth_query answers and learned secrets are keyed: see <see cref="DatabaseKeyOf"/>.</summary>
    public string DatabaseKey { get; }

    /// <summary>
    /// The entry's name, or "*" + the client's database under the fallback entry: each database a client reaches
    /// through "*" is a database of its own (its own pools, its own auth_query answers, its own learned secrets).
    /// </summary>
    public static string DatabaseKeyOf(DatabaseConfig database, string clientDatabase) =>
        database.Name == "*" ? "*" + clientDatabase : database.Name;

    public IReadOnlyList<KeyValuePair<string, string>> StartupParameters { get; }

    public override string ToString() => $"{Database.Name}/{ClientUser}";

    private static void AddIfSet(List<KeyValuePair<string, string>> list, string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            list.Add(new(key, value));
        }
    }
}

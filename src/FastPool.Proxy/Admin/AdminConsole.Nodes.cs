using System.Globalization;
using FastPool.Protocol;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Admin;

/// <summary>ATTACH / DETACH / PROMOTE / RECOVER NODE n [db]: node ids as SHOW POOL_NODES shows them.</summary>
internal sealed partial class AdminConsole
{
    private async ValueTask NodeCommandAsync(AdminCommand command)
    {
        var args = command.Args;
        if (args.Count is < 2 or > 3 || !string.Equals(args[0], "NODE", StringComparison.OrdinalIgnoreCase)
            || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int id))
        {
            throw new AdminException(SqlState.SyntaxError, $"syntax: {command.Verb} NODE n [database]", "n is the node_id column of SHOW POOL_NODES.");
        }

        // Without a database name the command applies to every entry that lists several nodes, as Pgpool-II's node ids are global.
        var config = _runtime.Config;
        string? db = args.Count == 3 ? args[2] : null;
        var entries = config.Databases.Append(config.FallbackDatabase)
            .Where(d => d is not null && d.Nodes.Count > 1 && (db is null || d.Name == db))
            .Select(d => _runtime.GetTopology(d!))
            .ToList();
        if (entries.Count == 0)
        {
            throw new AdminException(SqlState.InvalidCatalogName, db is null ? "no database entry lists more than one node" : $"no database entry \"{db}\" with more than one node");
        }

        foreach (var topology in entries)
        {
            if (id >= topology.Nodes.Length)
            {
                throw new AdminException(SqlState.UndefinedObject, $"database \"{topology.Config.Name}\" has no node {id}", "SHOW POOL_NODES lists the nodes.");
            }

            var node = topology.Nodes[id];
            var failover = _runtime.Failover;
            try
            {
                await (command.Verb switch
                {
                    "ATTACH" => failover.AttachAsync(topology, node),
                    "DETACH" => failover.DetachAsync(topology, node),
                    "PROMOTE" => failover.SwitchoverAsync(topology, node),
                    _ => failover.RecoverAsync(topology, node),
                }).ConfigureAwait(false);
            }
            catch (NodeCommandException ex)
            {
                throw new AdminException(SqlState.ObjectNotInPrerequisiteState, $"{command.Verb} NODE {id} (database \"{topology.Config.Name}\"): {ex.Message}");
            }
        }
    }
}

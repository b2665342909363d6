using System.Diagnostics;
using Npgsql;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>
/// One real PostgreSQL server for the whole test run: <c>scripts/postgres-test-server.sh</c> initdb's and starts a
/// throwaway cluster (stopped and deleted at the end, and by a watchdog if this process dies first). The
/// environment variable <c>CHATSERVICES_TEST_POSTGRES</c>, set to a connection string, uses that server instead.
/// </summary>
/// <remarks>
/// When no server can be had, the fixture does not throw (that would hide which tests depend on it); it keeps
/// the reason, and every PostgreSQL test fails with it through <see cref="RequireConnectionString"/>. The
/// PostgreSQL tests are required: they never skip.
/// </remarks>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    public const string ConnectionStringVariable = "CHATSERVICES_TEST_POSTGRES";

    private static readonly string Script = Path.Combine(TestPaths.RepoRoot, "scripts", "postgres-test-server.sh");

    private string? _connectionString;
    private string? _startError;
    private string? _serverDirectory;

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable(ConnectionStringVariable) is { Length: > 0 } configured)
        {
            _connectionString = configured;
            return;
        }

        int exitCode;
        string stdout, stderr;
        try
        {
            (exitCode, stdout, stderr) = await RunScriptAsync(Script, "start", "--watch-pid", Environment.ProcessId.ToString());
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or OperationCanceledException)
        {
            _startError = $"scripts/postgres-test-server.sh could not be run: {e.Message}";
            return;
        }
        if (exitCode != 0)
        {
            _startError = $"scripts/postgres-test-server.sh start exited with {exitCode}: {stderr.Trim()}";
            return;
        }
        _connectionString = stdout.Trim().Split('\n')[^1];
        _serverDirectory = new NpgsqlConnectionStringBuilder(_connectionString).Host;
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_serverDirectory is not null)
            await RunScriptAsync(Script, "stop", _serverDirectory);
    }

    /// <summary>The server's connection string; throws, failing the calling test, when there is no server.</summary>
    public string RequireConnectionString() =>
        _connectionString ?? throw new InvalidOperationException(
            $"The PostgreSQL tests need a PostgreSQL server and none could be started ({_startError}). Install PostgreSQL with scripts/setup.sh --test, or set {ConnectionStringVariable} to a connection string.");

    /// <summary>Runs <paramref name="sql"/> on the server as its administrator (outside any test database).</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(RequireConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Creates an empty database named <paramref name="prefix"/> and a random suffix; returns its name and connection string.</summary>
    public async Task<(string Name, string ConnectionString)> CreateDatabaseAsync(string prefix)
    {
        var name = prefix + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"CREATE DATABASE {name}");
        return (name, new NpgsqlConnectionStringBuilder(RequireConnectionString()) { Database = name }.ConnectionString);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunScriptAsync(string script, params string[] args)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServerFixture>
{
    public const string Name = "PostgreSQL server";
}

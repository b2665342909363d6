namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The SQLite schema as ordered migrations. Append new versions; never edit an applied one.
/// Ids are canonical lower-case UUID text; timestamps integer microseconds since the Unix epoch, UTC.
/// </summary>
internal static class SqliteSchema
{
    public const string MigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        );
        """;

    public static IReadOnlyList<SchemaMigration> Migrations { get; } =
    [
        new(1, "conversations and messages", """
            CREATE TABLE conversations (
                id            TEXT PRIMARY KEY NOT NULL,
                owner_id      TEXT NOT NULL,
                title         TEXT NOT NULL,
                system_prompt TEXT,
                metadata      TEXT,
                created_at    INTEGER NOT NULL,
                updated_at    INTEGER NOT NULL,
                message_count INTEGER NOT NULL DEFAULT 0
            );
            -- Listing: an owner's conversations, most recently updated first.
            CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at DESC, id DESC);

            CREATE TABLE messages (
                id                TEXT PRIMARY KEY NOT NULL,
                conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                seq               INTEGER NOT NULL CHECK (seq > 0),
                role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
                content           TEXT NOT NULL,
                status            TEXT NOT NULL CHECK (status IN ('completed', 'in_progress', 'cancelled', 'failed')),
                finish_reason     TEXT,
                prompt_tokens     INTEGER,
                completion_tokens INTEGER,
                error             TEXT,
                created_at        INTEGER NOT NULL,
                completed_at      INTEGER,
                UNIQUE (conversation_id, seq)
            );
            -- Recovery after a crash: replies still being generated.
            CREATE INDEX messages_in_progress ON messages (created_at) WHERE status = 'in_progress';
            """),
        new(2, "api keys, rate windows and usage", """
            -- Only the SHA-256 of a key is stored (lowercase hex), never the key.
            CREATE TABLE api_keys (
                id                  TEXT PRIMARY KEY NOT NULL,
                key_sha256          TEXT NOT NULL UNIQUE,
                owner_id            TEXT NOT NULL,
                role                TEXT NOT NULL CHECK (role IN ('user', 'service', 'admin')),
                name                TEXT NOT NULL,
                requests_per_minute INTEGER NOT NULL DEFAULT 0 CHECK (requests_per_minute >= 0),
                tokens_per_minute   INTEGER NOT NULL DEFAULT 0 CHECK (tokens_per_minute >= 0),
                created_at          INTEGER NOT NULL,
                last_used_at        INTEGER,
                expires_at          INTEGER,
                revoked_at          INTEGER
            );
            CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at DESC);

            -- Rate limits shared by every replica: requests and tokens per caller key and UTC minute.
            CREATE TABLE rate_windows (
                key_id       TEXT NOT NULL,
                window_start INTEGER NOT NULL,
                requests     INTEGER NOT NULL DEFAULT 0,
                tokens       INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (key_id, window_start)
            );

            -- Usage per caller key and UTC day (YYYY-MM-DD).
            CREATE TABLE key_usage (
                key_id            TEXT NOT NULL,
                day               TEXT NOT NULL,
                owner_id          TEXT NOT NULL,
                requests          INTEGER NOT NULL DEFAULT 0,
                prompt_tokens     INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (key_id, day)
            );
            CREATE INDEX key_usage_owner_day ON key_usage (owner_id, day);
            """),
        new(3, "message parents (edits and regenerations branch)", """
            ALTER TABLE messages ADD COLUMN parent_id TEXT REFERENCES messages (id) ON DELETE CASCADE;
            -- Messages written before branching existed form one line: each answers the one before it.
            UPDATE messages SET parent_id = (
                SELECT p.id FROM messages p WHERE p.conversation_id = messages.conversation_id AND p.seq = messages.seq - 1);
            CREATE INDEX messages_parent ON messages (parent_id);
            """),
        new(4, "tool calls and tool results", """
            -- An assistant reply's tool calls: [{"id", "name", "arguments"}], arguments as the model's JSON text.
            ALTER TABLE messages ADD COLUMN tool_calls TEXT;
            -- A tool message's answer to a call: the call's id.
            ALTER TABLE messages ADD COLUMN tool_call_id TEXT;
            """),
    ];
}

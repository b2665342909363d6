namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The PostgreSQL schema as ordered migrations, in the connection's current schema (search_path). Append new
/// versions; never edit an applied one.
/// </summary>
internal static class PostgresSchema
{
    public const string MigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL
        );
        """;

    public static IReadOnlyList<SchemaMigration> Migrations { get; } =
    [
        new(1, "conversations and messages", """
            CREATE TABLE conversations (
                id            uuid PRIMARY KEY,
                owner_id      text NOT NULL,
                title         text NOT NULL,
                system_prompt text,
                metadata      jsonb,
                created_at    timestamptz NOT NULL,
                updated_at    timestamptz NOT NULL,
                message_count bigint NOT NULL DEFAULT 0
            );
            -- Listing: an owner's conversations, most recently updated first.
            CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at DESC, id DESC);

            CREATE TABLE messages (
                id                uuid PRIMARY KEY,
                conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                seq               bigint NOT NULL CHECK (seq > 0),
                role              text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
                content           text NOT NULL,
                status            text NOT NULL CHECK (status IN ('completed', 'in_progress', 'cancelled', 'failed')),
                finish_reason     text,
                prompt_tokens     integer,
                completion_tokens integer,
                error             text,
                created_at        timestamptz NOT NULL,
                completed_at      timestamptz,
                UNIQUE (conversation_id, seq)
            );
            -- Recovery after a crash: replies still being generated.
            CREATE INDEX messages_in_progress ON messages (created_at) WHERE status = 'in_progress';
            """),
        new(2, "api keys, rate windows and usage", """
            -- Only the SHA-256 of a key is stored (lowercase hex), never the key.
            CREATE TABLE api_keys (
                id                  uuid PRIMARY KEY,
                key_sha256          text NOT NULL UNIQUE,
                owner_id            text NOT NULL,
                role                text NOT NULL CHECK (role IN ('user', 'service', 'admin')),
                name                text NOT NULL,
                requests_per_minute integer NOT NULL DEFAULT 0 CHECK (requests_per_minute >= 0),
                tokens_per_minute   integer NOT NULL DEFAULT 0 CHECK (tokens_per_minute >= 0),
                created_at          timestamptz NOT NULL,
                last_used_at        timestamptz,
                expires_at          timestamptz,
                revoked_at          timestamptz
            );
            CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at DESC);

            -- Rate limits shared by every replica: requests and tokens per caller key and UTC minute.
            CREATE TABLE rate_windows (
                key_id       text NOT NULL,
                window_start bigint NOT NULL,
                requests     bigint NOT NULL DEFAULT 0,
                tokens       bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (key_id, window_start)
            );

            -- Usage per caller key and UTC day (YYYY-MM-DD).
            CREATE TABLE key_usage (
                key_id            text NOT NULL,
                day               text NOT NULL,
                owner_id          text NOT NULL,
                requests          bigint NOT NULL DEFAULT 0,
                prompt_tokens     bigint NOT NULL DEFAULT 0,
                completion_tokens bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (key_id, day)
            );
            CREATE INDEX key_usage_owner_day ON key_usage (owner_id, day);
            """),
        new(3, "message parents (edits and regenerations branch)", """
            ALTER TABLE messages ADD COLUMN parent_id uuid REFERENCES messages (id) ON DELETE CASCADE;
            -- Messages written before branching existed form one line: each answers the one before it.
            UPDATE messages m SET parent_id = p.id
                FROM messages p WHERE p.conversation_id = m.conversation_id AND p.seq = m.seq - 1;
            CREATE INDEX messages_parent ON messages (parent_id);
            """),
        new(4, "tool calls and tool results", """
            -- An assistant reply's tool calls: [{"id", "name", "arguments"}], arguments as the model's JSON text.
            ALTER TABLE messages ADD COLUMN tool_calls jsonb;
            -- A tool message's answer to a call: the call's id.
            ALTER TABLE messages ADD COLUMN tool_call_id text;
            """),
    ];
}

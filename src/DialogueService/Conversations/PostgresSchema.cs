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
        new(3, "message parents (edits and regenerations branch)", """
            ALTER TABLE messages ADD COLUMN parent_id uuid REFERENCES messages (id) ON DELETE CASCADE;
            -- Messages written before branching existed form one line: each answers the one before it.
            UPDATE messages m SET parent_id = p.id
                FROM messages p WHERE p.conversation_id = m.conversation_id AND p.seq = m.seq - 1;
            CREATE INDEX messages_parent ON messages (parent_id);
            """),
    ];
}

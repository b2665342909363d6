using System.Collections.Concurrent;
using System.Data.Common;
using ChatServices.DialogueService.Conversations;

namespace ChatServices.DialogueService.Tests.Conversations;

/// <summary>
/// The behaviour every <see cref="IConversationStore"/> must have, run against each real database by a concrete
/// subclass. Each test gets a database of its own (a file, or a PostgreSQL schema), migrated before it starts.
/// </summary>
public abstract partial class ConversationStoreTests : IAsyncLifetime
{
    private const string Alice = "alice";
    private const string Bob = "bob";

    private readonly List<SqlConversationStore> _opened = [];

    /// <summary>The migrated store of this test's main database.</summary>
    protected SqlConversationStore Store { get; private set; } = null!;

    /// <summary>
    /// A new store instance on the database called <paramref name="database"/> within this test (created empty
    /// on first use, not migrated). Instances on one name share one database, like replicas.
    /// </summary>
    protected abstract Task<SqlConversationStore> CreateStoreAsync(string database);

    /// <summary>Raw row counts, read around the store: what really is in the tables.</summary>
    protected abstract Task<long> CountRowsAsync(string database, string table, Guid conversationId);

    /// <summary>Cuts the connection of a transaction in flight, the way a crashed client or network would.</summary>
    protected abstract Task BreakConnectionAsync(DbConnection connection);

    /// <summary>The dialect's migrations, which a fresh database gets.</summary>
    protected abstract IReadOnlyList<SchemaMigration> Schema { get; }

    protected async Task<SqlConversationStore> OpenAsync(string database)
    {
        var store = await CreateStoreAsync(database);
        _opened.Add(store);
        return store;
    }

    public virtual async Task InitializeAsync()
    {
        Store = await OpenAsync("main");
        await Store.MigrateAsync();
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened) await store.DisposeAsync();
    }

    // ---- create, get, rename, delete ----

    [Fact]
    public async Task Create_then_get_returns_what_was_stored()
    {
        var metadata = new Dictionary<string, string> { ["model"] = "tiny", ["client"] = "web" };
        var created = await Store.CreateAsync(Alice, "  Trip planning  ", "You are terse.", metadata);

        var fetched = await Store.GetAsync(Alice, created.Id, includeMessages: true);

        Assert.Equal("Trip planning", created.Title);
        Assert.Equal(created.Id, fetched.Conversation.Id);
        Assert.Equal(Alice, fetched.Conversation.OwnerId);
        Assert.Equal("Trip planning", fetched.Conversation.Title);
        Assert.Equal("You are terse.", fetched.Conversation.SystemPrompt);
        Assert.Equal(metadata, fetched.Conversation.Metadata);
        Assert.Equal(created.CreatedAt, fetched.Conversation.CreatedAt);
        Assert.Equal(TimeSpan.Zero, fetched.Conversation.CreatedAt.Offset);
        Assert.InRange(fetched.Conversation.CreatedAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(0, fetched.Conversation.MessageCount);
        Assert.Empty(fetched.Messages);
    }

    [Fact]
    public async Task Create_without_optional_fields_stores_empty_title_and_no_metadata()
    {
        var created = await Store.CreateAsync(Alice, null);
        var fetched = (await Store.GetAsync(Alice, created.Id, includeMessages: false)).Conversation;

        Assert.Equal("", fetched.Title);
        Assert.Null(fetched.SystemPrompt);
        Assert.Empty(fetched.Metadata);
    }

    [Fact]
    public async Task Data_is_visible_to_a_second_store_instance_on_the_same_database()
    {
        var created = await Store.CreateAsync(Alice, "shared");
        await Store.AppendMessageAsync(Alice, created.Id, MessageRole.User, "hello");

        var replica = await OpenAsync("main");
        var fetched = await replica.GetAsync(Alice, created.Id, includeMessages: true);

        Assert.Equal("hello", Assert.Single(fetched.Messages).Content);
    }

    [Fact]
    public async Task Rename_changes_the_title_and_moves_the_conversation_up()
    {
        var first = await Store.CreateAsync(Alice, "first");
        await Store.CreateAsync(Alice, "second");

        var renamed = await Store.RenameAsync(Alice, first.Id, " renamed ");

        Assert.Equal("renamed", renamed.Title);
        Assert.True(renamed.UpdatedAt >= first.UpdatedAt);
        Assert.Equal("renamed", (await Store.GetAsync(Alice, first.Id, false)).Conversation.Title);
        Assert.Equal(first.Id, (await Store.ListAsync(Alice, 10, null)).Conversations[0].Id);
    }

    [Fact]
    public async Task Delete_removes_the_conversation_and_every_message_row()
    {
        var doomed = await Store.CreateAsync(Alice, "doomed");
        var kept = await Store.CreateAsync(Alice, "kept");
        for (var i = 0; i < 3; i++) await Store.AppendMessageAsync(Alice, doomed.Id, MessageRole.User, $"m{i}");
        await Store.AppendMessageAsync(Alice, kept.Id, MessageRole.User, "stays");

        await Store.DeleteAsync(Alice, doomed.Id);

        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.GetAsync(Alice, doomed.Id, false));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.DeleteAsync(Alice, doomed.Id));
        Assert.Equal(0, await CountRowsAsync("main", "messages", doomed.Id));
        Assert.Equal(0, await CountRowsAsync("main", "conversations", doomed.Id));
        Assert.Equal(1, await CountRowsAsync("main", "messages", kept.Id));
    }

    // ---- owners ----

    [Theory]
    [InlineData(Alice, Bob)]
    [InlineData(Bob, Alice)]
    public async Task An_owner_can_neither_read_nor_alter_another_owners_conversation(string owner, string intruder)
    {
        var conversation = await Store.CreateAsync(owner, "private");
        await Store.AppendMessageAsync(owner, conversation.Id, MessageRole.User, "secret");
        var reply = await Store.BeginAssistantMessageAsync(owner, conversation.Id);
        var id = conversation.Id;
        var before = (await Store.GetAsync(owner, id, includeMessages: false)).Conversation;

        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.GetAsync(intruder, id, true));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.RenameAsync(intruder, id, "mine"));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.DeleteAsync(intruder, id));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.AppendMessageAsync(intruder, id, MessageRole.User, "x"));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.BeginAssistantMessageAsync(intruder, id));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.CompleteAssistantMessageAsync(
            intruder, id, reply.Id, new AssistantOutcome(MessageStatus.Completed, "hijacked")));
        Assert.Empty((await Store.ListAsync(intruder, 100, null)).Conversations);

        var untouched = await Store.GetAsync(owner, id, includeMessages: true);
        Assert.Equal(before, untouched.Conversation);
        Assert.Equal(["secret", ""], untouched.Messages.Select(m => m.Content));
        Assert.Equal(MessageStatus.InProgress, untouched.Messages[1].Status);
    }

    [Fact]
    public async Task A_foreign_conversation_is_reported_exactly_like_a_missing_one()
    {
        var foreign = await Store.CreateAsync(Bob, "bob's");
        var missing = Guid.CreateVersion7();

        var foreignError = await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.GetAsync(Alice, foreign.Id, false));
        var missingError = await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.GetAsync(Alice, missing, false));

        Assert.Equal(missingError.Message.Replace(missing.ToString(), "{id}"), foreignError.Message.Replace(foreign.Id.ToString(), "{id}"));
    }

    // ---- listing ----

    [Fact]
    public async Task Listing_pages_through_every_conversation_once_newest_first()
    {
        var created = new List<Conversation>();
        for (var i = 0; i < 23; i++) created.Add(await Store.CreateAsync(Alice, $"c{i}"));
        await Store.CreateAsync(Bob, "not alice's");

        var listed = await ListAllAsync(Store, Alice, pageSize: 5);

        var expected = created.OrderByDescending(c => c.UpdatedAt).ThenByDescending(c => c.Id.ToString(), StringComparer.Ordinal).Select(c => c.Id);
        Assert.Equal(expected, listed.Select(c => c.Id));
    }

    [Fact]
    public async Task A_page_exactly_filled_by_the_last_conversations_has_no_next_token()
    {
        for (var i = 0; i < 4; i++) await Store.CreateAsync(Alice, $"c{i}");

        var first = await Store.ListAsync(Alice, 2, null);
        var second = await Store.ListAsync(Alice, 2, first.NextPageToken);

        Assert.NotNull(first.NextPageToken);
        Assert.Equal(2, second.Conversations.Count);
        Assert.Null(second.NextPageToken);
    }

    [Fact]
    public async Task Listing_while_conversations_are_being_created_neither_repeats_nor_skips_existing_ones()
    {
        var existing = new List<Guid>();
        for (var i = 0; i < 30; i++) existing.Add((await Store.CreateAsync(Alice, $"c{i}")).Id);

        using var stop = new CancellationTokenSource();
        var inserted = new ConcurrentBag<Guid>();
        var inserter = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
                inserted.Add((await Store.CreateAsync(Alice, "new")).Id);
        });
        List<Conversation> listed;
        try
        {
            // Let the inserter get going, then page slowly enough that inserts interleave with every page.
            while (inserted.Count < 3) await Task.Delay(5);
            listed = await ListAllAsync(Store, Alice, pageSize: 4, betweenPages: () => Task.Delay(10));
        }
        finally
        {
            await stop.CancelAsync();
            await inserter;
        }

        var ids = listed.Select(c => c.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(existing, id => Assert.Contains(id, ids));
        Assert.True(inserted.Count > 3, "conversations were created while the listing went on");
        for (var i = 1; i < listed.Count; i++)
            Assert.True(IsAfter(listed[i - 1], listed[i]), "pages keep (updated_at, id) descending");
    }

    [Fact]
    public async Task A_new_message_moves_its_conversation_to_the_top()
    {
        var older = await Store.CreateAsync(Alice, "older");
        await Store.CreateAsync(Alice, "newer");

        await Store.AppendMessageAsync(Alice, older.Id, MessageRole.User, "bump");

        Assert.Equal(older.Id, (await Store.ListAsync(Alice, 1, null)).Conversations[0].Id);
    }

    [Theory]
    [InlineData("not-a-token")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] // right length, wrong format version
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!")] // right length, not base64url
    public async Task A_page_token_not_issued_by_the_store_is_invalid(string token)
    {
        var error = await Assert.ThrowsAsync<ConversationValidationException>(() => Store.ListAsync(Alice, 10, token));
        Assert.Equal("pageToken", error.ParamName);
        // Written for the caller: no "(Parameter 'pageToken')" naming a C# parameter.
        Assert.Equal("The page token is not valid; pass the token of the previous page unchanged.", error.Message);
    }

    // ---- messages ----

    [Fact]
    public async Task Appended_messages_are_numbered_in_order_and_read_back_in_that_order()
    {
        var conversation = await Store.CreateAsync(Alice, "chat");
        MessageRole[] roles = [MessageRole.System, MessageRole.User, MessageRole.Assistant, MessageRole.Tool, MessageRole.User];
        for (var i = 0; i < roles.Length; i++)
            await Store.AppendMessageAsync(Alice, conversation.Id, roles[i], $"message {i}",
                toolCallId: roles[i] == MessageRole.Tool ? "call_1" : null);

        var detail = await Store.GetAsync(Alice, conversation.Id, includeMessages: true);
        Assert.Equal([null, null, null, "call_1", null], detail.Messages.Select(m => m.ToolCallId));

        Assert.Equal(5, detail.Conversation.MessageCount);
        Assert.Equal([1L, 2, 3, 4, 5], detail.Messages.Select(m => m.Sequence));
        Assert.Equal(roles, detail.Messages.Select(m => m.Role));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"message {i}"), detail.Messages.Select(m => m.Content));
        Assert.All(detail.Messages, m => Assert.Equal(MessageStatus.Completed, m.Status));
        Assert.All(detail.Messages, m => Assert.NotNull(m.CompletedAt));
    }

    [Fact]
    public async Task Concurrent_appends_get_one_gapless_total_order()
    {
        var conversation = await Store.CreateAsync(Alice, "busy");
        var replica = await OpenAsync("main");
        const int writers = 6, perWriter = 15;

        var results = await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var store = w % 2 == 0 ? Store : replica; // two store instances, as two replicas would be
            var sequences = new List<long>();
            for (var i = 0; i < perWriter; i++)
                sequences.Add((await store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, $"{w}:{i}")).Sequence);
            return sequences;
        })));

        var detail = await Store.GetAsync(Alice, conversation.Id, includeMessages: true);
        Assert.Equal(writers * perWriter, detail.Conversation.MessageCount);
        Assert.Equal(Enumerable.Range(1, writers * perWriter).Select(i => (long)i), detail.Messages.Select(m => m.Sequence));
        Assert.Equal(results.SelectMany(s => s).Order(), detail.Messages.Select(m => m.Sequence));
        foreach (var sequences in results)
            Assert.Equal(sequences.Order(), sequences); // each writer's messages keep the order it sent them
        foreach (var message in detail.Messages)
        {
            var (writer, index) = (int.Parse(message.Content.Split(':')[0]), int.Parse(message.Content.Split(':')[1]));
            Assert.Equal(results[writer][index], message.Sequence);
        }
    }

    // ---- the generation lifecycle ----

    [Fact]
    public async Task The_user_message_is_committed_before_generation_and_the_reply_reserved_after_it()
    {
        var conversation = await Store.CreateAsync(Alice, "chat");
        var user = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "What is 2+2?");
        var reply = await Store.BeginAssistantMessageAsync(Alice, conversation.Id);

        // Another instance (another connection, another replica) sees both: they are committed.
        var seen = await (await OpenAsync("main")).GetAsync(Alice, conversation.Id, includeMessages: true);

        Assert.Equal([user.Id, reply.Id], seen.Messages.Select(m => m.Id));
        Assert.Equal(MessageStatus.Completed, seen.Messages[0].Status);
        Assert.Equal(MessageStatus.InProgress, seen.Messages[1].Status);
        Assert.Equal(MessageRole.Assistant, seen.Messages[1].Role);
        Assert.Equal("", seen.Messages[1].Content);
        Assert.Null(seen.Messages[1].CompletedAt);
        Assert.Equal(user.Sequence + 1, reply.Sequence);
    }

    [Fact]
    public async Task A_completed_reply_keeps_its_content_finish_reason_and_usage()
    {
        var (conversation, reply) = await StartReplyAsync();

        var done = await Store.CompleteAssistantMessageAsync(Alice, conversation.Id, reply.Id,
            new AssistantOutcome(MessageStatus.Completed, "4.", "stop", new TokenUsage(12, 3)));

        var stored = (await Store.GetAsync(Alice, conversation.Id, true)).Messages[^1];
        Assert.Equal(done, stored);
        Assert.Equal(MessageStatus.Completed, stored.Status);
        Assert.Equal("4.", stored.Content);
        Assert.Equal("stop", stored.FinishReason);
        Assert.Equal(new TokenUsage(12, 3), stored.Usage);
        Assert.Null(stored.Error);
        Assert.NotNull(stored.CompletedAt);
    }

    [Fact]
    public async Task A_cancelled_reply_keeps_the_partial_content_marked_cancelled()
    {
        var (conversation, reply) = await StartReplyAsync();

        await Store.CompleteAssistantMessageAsync(Alice, conversation.Id, reply.Id,
            new AssistantOutcome(MessageStatus.Cancelled, "The answer is", Usage: new TokenUsage(12, 3)));

        var stored = (await Store.GetAsync(Alice, conversation.Id, true)).Messages[^1];
        Assert.Equal(MessageStatus.Cancelled, stored.Status);
        Assert.Equal("The answer is", stored.Content);
        Assert.Null(stored.FinishReason);
    }

    [Fact]
    public async Task A_failed_reply_keeps_the_partial_content_and_the_error()
    {
        var (conversation, reply) = await StartReplyAsync();

        await Store.CompleteAssistantMessageAsync(Alice, conversation.Id, reply.Id,
            new AssistantOutcome(MessageStatus.Failed, "The ans", Error: "inference service unavailable"));

        var stored = (await Store.GetAsync(Alice, conversation.Id, true)).Messages[^1];
        Assert.Equal(MessageStatus.Failed, stored.Status);
        Assert.Equal("The ans", stored.Content);
        Assert.Equal("inference service unavailable", stored.Error);
    }

    [Fact]
    public async Task A_reply_is_completed_once()
    {
        var (conversation, reply) = await StartReplyAsync();
        await Store.CompleteAssistantMessageAsync(Alice, conversation.Id, reply.Id, new AssistantOutcome(MessageStatus.Completed, "first"));

        await Assert.ThrowsAsync<ConversationStateException>(() => Store.CompleteAssistantMessageAsync(
            Alice, conversation.Id, reply.Id, new AssistantOutcome(MessageStatus.Failed, "second", Error: "late")));
        var user = (await Store.GetAsync(Alice, conversation.Id, true)).Messages[0];
        await Assert.ThrowsAsync<ConversationStateException>(() => Store.CompleteAssistantMessageAsync(
            Alice, conversation.Id, user.Id, new AssistantOutcome(MessageStatus.Completed, "overwrite the user")));
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.CompleteAssistantMessageAsync(
            Alice, conversation.Id, Guid.CreateVersion7(), new AssistantOutcome(MessageStatus.Completed, "x")));

        var messages = (await Store.GetAsync(Alice, conversation.Id, true)).Messages;
        Assert.Equal(["hi", "first"], messages.Select(m => m.Content));
    }

    [Fact]
    public async Task A_message_of_another_conversation_cannot_be_completed_through_this_one()
    {
        var (first, reply) = await StartReplyAsync();
        var second = await Store.CreateAsync(Alice, "other");

        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.CompleteAssistantMessageAsync(
            Alice, second.Id, reply.Id, new AssistantOutcome(MessageStatus.Completed, "x")));
        Assert.Equal(MessageStatus.InProgress, (await Store.GetAsync(Alice, first.Id, true)).Messages[^1].Status);
    }

    [Fact]
    public async Task Replies_left_in_progress_by_a_dead_process_are_marked_failed_at_recovery()
    {
        var (conversation, abandoned) = await StartReplyAsync();
        var cutoff = DateTimeOffset.UtcNow.AddSeconds(1);

        Assert.Equal(0, await Store.FailAbandonedMessagesAsync(abandoned.CreatedAt)); // begun at, not before
        Assert.Equal(1, await Store.FailAbandonedMessagesAsync(cutoff));
        Assert.Equal(0, await Store.FailAbandonedMessagesAsync(cutoff));

        var stored = (await Store.GetAsync(Alice, conversation.Id, true)).Messages[^1];
        Assert.Equal(MessageStatus.Failed, stored.Status);
        Assert.NotNull(stored.Error);
        await Assert.ThrowsAsync<ConversationStateException>(() => Store.CompleteAssistantMessageAsync(
            Alice, conversation.Id, abandoned.Id, new AssistantOutcome(MessageStatus.Completed, "too late")));
    }

    // ---- transactions ----

    [Fact]
    public async Task An_append_interrupted_by_an_exception_half_way_leaves_nothing_behind()
    {
        var conversation = await Store.CreateAsync(Alice, "chat");
        Store.BetweenStatements = (point, _) => point == "append:numbered" ? throw new IOException("boom") : Task.CompletedTask;

        await Assert.ThrowsAsync<IOException>(() => Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "lost"));
        Store.BetweenStatements = null;

        await AssertUntouchedThenUsableAsync(conversation);
    }

    [Fact]
    public async Task An_append_whose_connection_breaks_half_way_leaves_nothing_behind()
    {
        var conversation = await Store.CreateAsync(Alice, "chat");
        Store.BetweenStatements = (point, connection) => point == "append:numbered" ? BreakConnectionAsync(connection) : Task.CompletedTask;

        await Assert.ThrowsAnyAsync<Exception>(() => Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "lost"));
        Store.BetweenStatements = null;

        await AssertUntouchedThenUsableAsync(conversation);
    }

    [Fact]
    public async Task A_completion_interrupted_half_way_leaves_the_reply_in_progress_and_completable()
    {
        var (conversation, reply) = await StartReplyAsync();
        var before = (await Store.GetAsync(Alice, conversation.Id, false)).Conversation;
        Store.BetweenStatements = (point, _) => point == "complete:touched" ? throw new IOException("boom") : Task.CompletedTask;

        await Assert.ThrowsAsync<IOException>(() => Store.CompleteAssistantMessageAsync(
            Alice, conversation.Id, reply.Id, new AssistantOutcome(MessageStatus.Completed, "lost")));
        Store.BetweenStatements = null;

        var after = await Store.GetAsync(Alice, conversation.Id, true);
        Assert.Equal(before.UpdatedAt, after.Conversation.UpdatedAt);
        Assert.Equal(MessageStatus.InProgress, after.Messages[^1].Status);
        Assert.Equal("", after.Messages[^1].Content);
        await Store.CompleteAssistantMessageAsync(Alice, conversation.Id, reply.Id, new AssistantOutcome(MessageStatus.Completed, "kept"));
        Assert.Equal("kept", (await Store.GetAsync(Alice, conversation.Id, true)).Messages[^1].Content);
    }

    private async Task AssertUntouchedThenUsableAsync(Conversation conversation)
    {
        var after = await Store.GetAsync(Alice, conversation.Id, includeMessages: true);
        Assert.Equal(0, after.Conversation.MessageCount);
        Assert.Equal(conversation.UpdatedAt, after.Conversation.UpdatedAt);
        Assert.Empty(after.Messages);
        Assert.Equal(0, await CountRowsAsync("main", "messages", conversation.Id));

        var next = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "kept");
        Assert.Equal(1, next.Sequence); // the rolled-back number was not consumed
    }

    [Fact]
    public async Task The_system_prompt_is_replaced_and_cleared_by_its_owner_only()
    {
        var conversation = await Store.CreateAsync(Alice, "prompted", "Be brief.");

        var changed = await Store.SetSystemPromptAsync(Alice, conversation.Id, "Be thorough.");
        await Assert.ThrowsAsync<ConversationNotFoundException>(() => Store.SetSystemPromptAsync(Bob, conversation.Id, "Obey Bob."));

        Assert.Equal("Be thorough.", (await Store.GetAsync(Alice, conversation.Id, false)).Conversation.SystemPrompt);
        Assert.True(changed.UpdatedAt >= conversation.UpdatedAt);
        await Store.SetSystemPromptAsync(Alice, conversation.Id, null);
        Assert.Null((await Store.GetAsync(Alice, conversation.Id, false)).Conversation.SystemPrompt);
    }

    // ---- branches ----

    [Fact]
    public async Task Edits_and_regenerations_branch_the_conversation_and_every_branch_stays_stored()
    {
        var conversation = await Store.CreateAsync(Alice, "branches");
        var question = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "first question");
        var answer = await Store.BeginAssistantMessageAsync(Alice, conversation.Id, question.Id);
        var followUp = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "follow-up");
        // An edit of the first question: a new first message. A second take on the first answer: its sibling.
        var edited = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "first question, edited", parentId: Guid.Empty);
        var retake = await Store.BeginAssistantMessageAsync(Alice, conversation.Id, question.Id);
        var afterRetake = await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "after the retake");

        var messages = (await Store.GetAsync(Alice, conversation.Id, includeMessages: true)).Messages;

        Assert.Equal([question.Id, answer.Id, followUp.Id, edited.Id, retake.Id, afterRetake.Id], messages.Select(m => m.Id));
        Assert.Equal([null, question.Id, answer.Id, null, question.Id, retake.Id], messages.Select(m => m.ParentId));
        Assert.Equal(question.Id, retake.ParentId);
    }

    [Fact]
    public async Task A_parent_from_another_conversation_is_refused_and_nothing_is_written()
    {
        var mine = await Store.CreateAsync(Alice, "mine");
        var other = await Store.CreateAsync(Alice, "other");
        var foreign = await Store.AppendMessageAsync(Alice, other.Id, MessageRole.User, "elsewhere");

        var refused = await Assert.ThrowsAsync<ConversationValidationException>(() =>
            Store.AppendMessageAsync(Alice, mine.Id, MessageRole.User, "misplaced", parentId: foreign.Id));
        await Assert.ThrowsAsync<ConversationValidationException>(() => Store.BeginAssistantMessageAsync(Alice, mine.Id, foreign.Id));

        Assert.Equal("parentId", refused.ParamName);
        Assert.Equal(0, await CountRowsAsync("main", "messages", mine.Id));
        Assert.Equal(0, (await Store.GetAsync(Alice, mine.Id, false)).Conversation.MessageCount);
    }

    // ---- migrations ----

    [Fact]
    public async Task Migrating_again_applies_nothing()
    {
        var conversation = await Store.CreateAsync(Alice, "survives");

        var again = await Store.MigrateAsync();
        var fromReplica = await (await OpenAsync("main")).MigrateAsync();

        Assert.Empty(again.Applied);
        Assert.Empty(fromReplica.Applied);
        Assert.Equal(Schema.Max(m => m.Version), again.SchemaVersion);
        Assert.Equal("survives", (await Store.GetAsync(Alice, conversation.Id, false)).Conversation.Title);
    }

    [Fact]
    public async Task Stores_migrating_one_fresh_database_at_once_apply_each_version_exactly_once()
    {
        var stores = new List<SqlConversationStore>();
        for (var i = 0; i < 4; i++) stores.Add(await OpenAsync("fresh"));

        var results = await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));

        Assert.Equal(Schema.Select(m => m.Version), results.SelectMany(r => r.Applied));
        Assert.All(results, r => Assert.Equal(Schema.Max(m => m.Version), r.SchemaVersion));
        var conversation = await stores[0].CreateAsync(Alice, "works");
        Assert.Equal("works", (await stores[3].GetAsync(Alice, conversation.Id, false)).Conversation.Title);
    }

    // ---- bad input ----

    [Theory]
    [InlineData("empty owner")]
    [InlineData("blank owner")]
    [InlineData("owner too long")]
    [InlineData("title too long")]
    [InlineData("system prompt too long")]
    [InlineData("too much metadata")]
    [InlineData("metadata value too long")]
    [InlineData("unknown role")]
    [InlineData("append in progress")]
    [InlineData("content too long")]
    [InlineData("content with NUL")]
    [InlineData("page size zero")]
    [InlineData("page size too large")]
    [InlineData("rename too long")]
    [InlineData("failed without error")]
    [InlineData("completed with error")]
    [InlineData("negative usage")]
    [InlineData("complete as in progress")]
    public async Task Bad_input_is_refused_with_a_validation_error_and_changes_nothing(string problem)
    {
        var conversation = await Store.CreateAsync(Alice, "target");
        var reply = await Store.BeginAssistantMessageAsync(Alice, conversation.Id);
        var id = conversation.Id;
        Task Complete(AssistantOutcome outcome) => Store.CompleteAssistantMessageAsync(Alice, id, reply.Id, outcome);

        Func<Task> call = problem switch
        {
            "empty owner" => () => Store.CreateAsync("", "t"),
            "blank owner" => () => Store.ListAsync("  ", 10, null),
            "owner too long" => () => Store.GetAsync(new string('o', ConversationLimits.MaxOwnerIdLength + 1), id, false),
            "title too long" => () => Store.CreateAsync(Alice, new string('t', ConversationLimits.MaxTitleLength + 1)),
            "system prompt too long" => () => Store.CreateAsync(Alice, "t", new string('s', ConversationLimits.MaxSystemPromptLength + 1)),
            "too much metadata" => () => Store.CreateAsync(Alice, "t", null,
                Enumerable.Range(0, ConversationLimits.MaxMetadataEntries + 1).ToDictionary(i => $"k{i}", i => "v")),
            "metadata value too long" => () => Store.CreateAsync(Alice, "t", null,
                new Dictionary<string, string> { ["k"] = new('v', ConversationLimits.MaxMetadataValueLength + 1) }),
            "unknown role" => () => Store.AppendMessageAsync(Alice, id, (MessageRole)42, "x"),
            "append in progress" => () => Store.AppendMessageAsync(Alice, id, MessageRole.Assistant, "x", MessageStatus.InProgress),
            "content too long" => () => Store.AppendMessageAsync(Alice, id, MessageRole.User, new string('c', ConversationLimits.MaxMessageLength + 1)),
            "content with NUL" => () => Store.AppendMessageAsync(Alice, id, MessageRole.User, "a\0b"),
            "page size zero" => () => Store.ListAsync(Alice, 0, null),
            "page size too large" => () => Store.ListAsync(Alice, ConversationLimits.MaxPageSize + 1, null),
            "rename too long" => () => Store.RenameAsync(Alice, id, new string('t', ConversationLimits.MaxTitleLength + 1)),
            "failed without error" => () => Complete(new AssistantOutcome(MessageStatus.Failed, "partial")),
            "completed with error" => () => Complete(new AssistantOutcome(MessageStatus.Completed, "all", Error: "but")),
            "negative usage" => () => Complete(new AssistantOutcome(MessageStatus.Completed, "all", Usage: new TokenUsage(-1, 2))),
            "complete as in progress" => () => Complete(new AssistantOutcome(MessageStatus.InProgress, "x")),
            _ => throw new ArgumentOutOfRangeException(nameof(problem)),
        };

        var error = await Assert.ThrowsAsync<ConversationValidationException>(call);
        Assert.False(string.IsNullOrWhiteSpace(error.ParamName));
        var after = await Store.GetAsync(Alice, id, includeMessages: true);
        Assert.Equal(conversation.Title, after.Conversation.Title);
        Assert.Equal(MessageStatus.InProgress, Assert.Single(after.Messages).Status);
        Assert.Single((await Store.ListAsync(Alice, 10, null)).Conversations);
    }

    // ---- helpers ----

    private async Task<(Conversation, ConversationMessage)> StartReplyAsync()
    {
        var conversation = await Store.CreateAsync(Alice, "chat");
        await Store.AppendMessageAsync(Alice, conversation.Id, MessageRole.User, "hi");
        return (conversation, await Store.BeginAssistantMessageAsync(Alice, conversation.Id));
    }

    private static async Task<List<Conversation>> ListAllAsync(
        IConversationStore store, string owner, int pageSize, Func<Task>? betweenPages = null)
    {
        var all = new List<Conversation>();
        string? token = null;
        do
        {
            var page = await store.ListAsync(owner, pageSize, token);
            Assert.InRange(page.Conversations.Count, page.NextPageToken is null ? 0 : pageSize, pageSize);
            all.AddRange(page.Conversations);
            token = page.NextPageToken;
            if (betweenPages is not null) await betweenPages();
        } while (token is not null);
        return all;
    }

    /// <summary>Whether <paramref name="a"/> lists before <paramref name="b"/>: (updated_at, id) descending.</summary>
    private static bool IsAfter(Conversation a, Conversation b) =>
        a.UpdatedAt != b.UpdatedAt
            ? a.UpdatedAt > b.UpdatedAt
            : string.CompareOrdinal(a.Id.ToString(), b.Id.ToString()) > 0;
}

using System.Net;
using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.Conversations;

[Collection(GatewayCollection.Name)]
public sealed class ConversationsApiTests(GatewayFixture fixture)
{
    [Fact]
    public async Task A_conversation_is_created_listed_renamed_read_and_deleted()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var created = await client.PostJsonAsync("/api/conversations", """{"title":"Trip plans"}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var conversation = await created.JsonAsync();
        var id = conversation.GetProperty("id").GetString()!;
        Assert.Equal("Trip plans", conversation.GetProperty("title").GetString());
        Assert.Equal("/api/conversations/" + id, created.Headers.Location?.ToString());

        var list = await (await client.GetAsync("/api/conversations")).JsonAsync();
        Assert.Contains(list.GetProperty("conversations").EnumerateArray(), c => c.GetProperty("id").GetString() == id);

        var renamed = await client.PatchAsync("/api/conversations/" + id, HttpJson.Body("""{"title":"Holiday"}"""));
        Assert.Equal("Holiday", (await renamed.JsonAsync()).GetProperty("title").GetString());
        Assert.Equal("Holiday", (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("title").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/api/conversations/" + id)).StatusCode);
        await (await client.GetAsync("/api/conversations/" + id)).AssertErrorAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_message_streams_its_reply_as_named_events_and_is_stored()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var id = (await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()!;

        using var response = await client.PostStreamingAsync($"/api/conversations/{id}/messages", """{"content":"good morning","temperature":0.2,"max_tokens":64}""");
        Assert.Equal("text/event-stream", response.ContentType()?.MediaType);
        var events = await ServerSentEventReader.ReadAllAsync(response);
        Assert.Equal("started", events[0].Name);
        Assert.Equal(id, events[0].Json.GetProperty("conversation_id").GetString());
        var text = string.Concat(events.Where(e => e.Name == "delta").Select(e => e.Json.GetProperty("text").GetString()));
        Assert.Equal("Hello! You said: good morning", text);
        var finished = Assert.Single(events, e => e.Name == "finished").Json;
        Assert.Equal("stop", finished.GetProperty("finish_reason").GetString());
        Assert.Single(events, e => e.Name == "usage");
        Assert.Equal("[DONE]", events[^1].Data);

        var request = fixture.Upstream.ChatRequests.Last(r => r.ConversationId == id);
        Assert.Equal("alice", request.OwnerId);
        Assert.Equal(0.2f, request.Settings.Temperature);
        Assert.Equal(64, request.Settings.MaxTokens);

        var stored = await (await client.GetAsync("/api/conversations/" + id)).JsonAsync();
        var messages = stored.GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(["user", "assistant"], messages.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("Hello! You said: good morning", messages[1].GetProperty("content").GetString());
        Assert.Equal(finished.GetProperty("assistant_message_id").GetString(), messages[1].GetProperty("id").GetString());
        Assert.Equal("good morning", stored.GetProperty("title").GetString());

        // Regenerate adds a second reply beside the first: both answer the same message.
        using var again = await client.PostStreamingAsync($"/api/conversations/{id}/messages", """{"regenerate":true}""");
        var regenerated = await ServerSentEventReader.ReadAllAsync(again);
        Assert.Equal("Hello! You said: good morning", string.Concat(regenerated.Where(e => e.Name == "delta").Select(e => e.Json.GetProperty("text").GetString())));
        Assert.True(fixture.Upstream.ChatRequests.Last(r => r.ConversationId == id).Regenerate);
        var after = (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(3, after.Length);
        Assert.Equal(after[1].GetProperty("parent_id").GetString(), after[2].GetProperty("parent_id").GetString());
    }

    [Fact]
    public async Task Messages_carry_their_parent_and_usage_and_an_edit_branches_where_the_page_says()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var id = (await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()!;
        using (var first = await client.PostStreamingAsync($"/api/conversations/{id}/messages", """{"content":"one"}"""))
            await ServerSentEventReader.ReadAllAsync(first);
        var messages = (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("messages").EnumerateArray().ToArray();
        var (question, answer) = (messages[0], messages[1]);
        Assert.Equal(JsonValueKind.Null, question.GetProperty("parent_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, question.GetProperty("usage").ValueKind);
        Assert.Equal(question.GetProperty("id").GetString(), answer.GetProperty("parent_id").GetString());
        Assert.True(answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);

        // "one" edited: a new first message ("" is no parent), its own reply below it.
        using (var edit = await client.PostStreamingAsync($"/api/conversations/{id}/messages", """{"content":"one, edited","parent_message_id":""}"""))
            await ServerSentEventReader.ReadAllAsync(edit);
        var request = fixture.Upstream.ChatRequests.Last(r => r.ConversationId == id);
        Assert.True(request.HasParentMessageId);
        Assert.Equal("", request.ParentMessageId);
        var after = (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(4, after.Length);
        Assert.Equal(JsonValueKind.Null, after[2].GetProperty("parent_id").ValueKind);
        Assert.Equal(after[2].GetProperty("id").GetString(), after[3].GetProperty("parent_id").GetString());

        // Continuing the first reply names it; the continuation is stored beside it.
        using (var more = await client.PostStreamingAsync($"/api/conversations/{id}/messages",
                   JsonSerializer.Serialize(new { @continue = true, parent_message_id = answer.GetProperty("id").GetString() })))
            await ServerSentEventReader.ReadAllAsync(more);
        var continued = fixture.Upstream.ChatRequests.Last(r => r.ConversationId == id);
        Assert.True(continued.ContinueReply);
        Assert.Equal(answer.GetProperty("id").GetString(), continued.ParentMessageId);
        Assert.Equal(question.GetProperty("id").GetString(),
            (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("messages")[4].GetProperty("parent_id").GetString());
    }

    [Fact]
    public async Task The_list_is_paged_by_page_size_and_page_token()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        await client.PostJsonAsync("/api/conversations", "{}");
        await (await client.GetAsync("/api/conversations?page_size=101")).AssertErrorAsync(HttpStatusCode.BadRequest, "page_size");
        var request = fixture.Upstream.ListRequests;
        await client.GetAsync("/api/conversations?page_size=5&page_token=abc");
        Assert.Equal((5, "abc"), (request.Last().PageSize, request.Last().PageToken));
    }

    [Fact]
    public async Task Another_owners_conversation_is_not_found()
    {
        using var alice = fixture.CreateClient(GatewayFixture.AliceKey);
        using var bob = fixture.CreateClient(GatewayFixture.BobKey);
        var id = (await (await alice.PostJsonAsync("/api/conversations", """{"title":"private"}""")).JsonAsync()).GetProperty("id").GetString()!;

        await (await bob.GetAsync("/api/conversations/" + id)).AssertErrorAsync(HttpStatusCode.NotFound);
        await (await bob.PostJsonAsync($"/api/conversations/{id}/messages", """{"content":"hi"}""")).AssertErrorAsync(HttpStatusCode.NotFound);
        await (await bob.DeleteAsync("/api/conversations/" + id)).AssertErrorAsync(HttpStatusCode.NotFound);
        var list = await (await bob.GetAsync("/api/conversations")).JsonAsync();
        Assert.DoesNotContain(list.GetProperty("conversations").EnumerateArray(), c => c.GetProperty("id").GetString() == id);
    }

    [Theory]
    [InlineData("{}", "content")]
    [InlineData("""{"content":"x","regenerate":true}""", "content")]
    [InlineData("""{"content":"x","temperature":9}""", "temperature")]
    [InlineData("""{"content":"x","max_tokens":"many"}""", "max_tokens")]
    [InlineData("""{"content":"x","parent_message_id":"no-such-message"}""", "parent_message_id")]
    [InlineData("""{"continue":true}""", "parent_message_id")]
    [InlineData("""{"content":"x","continue":true,"parent_message_id":"m"}""", "content")]
    [InlineData("""{"regenerate":true,"continue":true,"parent_message_id":"m"}""", "continue")]
    [InlineData("""{"content":"x","top_p":1.5}""", "top_p")]
    public async Task A_bad_message_is_a_400_naming_the_field(string json, string param)
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var id = (await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()!;
        await (await client.PostJsonAsync($"/api/conversations/{id}/messages", json)).AssertErrorAsync(HttpStatusCode.BadRequest, param);
    }

    [Fact]
    public async Task The_system_prompt_is_changed_with_patch_and_a_patch_without_fields_is_a_400()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var id = (await (await client.PostJsonAsync("/api/conversations", """{"system_prompt":"Be brief."}""")).JsonAsync()).GetProperty("id").GetString()!;

        var changed = await (await client.PatchAsync("/api/conversations/" + id, HttpJson.Body("""{"system_prompt":"Be thorough."}"""))).JsonAsync();

        Assert.Equal("Be thorough.", changed.GetProperty("system_prompt").GetString());
        Assert.Equal("Be thorough.", (await (await client.GetAsync("/api/conversations/" + id)).JsonAsync()).GetProperty("system_prompt").GetString());
        await (await client.PatchAsync("/api/conversations/" + id, HttpJson.Body("{}"))).AssertErrorAsync(HttpStatusCode.BadRequest, "title");
    }

    [Fact]
    public async Task A_NUL_in_a_message_is_a_400_naming_content()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var id = (await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString()!;
        var error = await (await client.PostJsonAsync($"/api/conversations/{id}/messages", """{"content":"a\u0000b"}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "content");
        Assert.Contains("U+0000", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("101")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("99999999999")]
    [InlineData("")]
    public async Task A_bad_page_size_is_a_400_naming_page_size_in_the_callers_words(string value)
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        var error = await (await client.GetAsync($"/api/conversations?page_size={Uri.EscapeDataString(value)}"))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "page_size");
        Assert.Equal($"Invalid value for 'page_size': '{value}'. It must be an integer between 1 and 100.", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("PUT", "/api/conversations", "GET, POST")]
    [InlineData("DELETE", "/api/conversations", "GET, POST")]
    [InlineData("PUT", "/api/conversations/some-id", "GET, PATCH, DELETE")]
    [InlineData("GET", "/api/conversations/some-id/messages", "POST")]
    public async Task A_method_the_url_does_not_serve_is_a_405_with_Allow_and_a_body(string method, string path, string allowed)
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : HttpJson.Body("{}") });
        var error = await response.AssertErrorAsync(HttpStatusCode.MethodNotAllowed);
        Assert.Equal("method_not_allowed", error.GetProperty("code").GetString());
        Assert.Equal(allowed.Split(", ").Order(), response.Content.Headers.Allow.Order());
        Assert.Contains(method, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_title_over_200_characters_is_a_400()
    {
        using var client = fixture.CreateClient(GatewayFixture.AliceKey);
        await (await client.PostJsonAsync("/api/conversations", JsonSerializer.Serialize(new { title = new string('t', 201) })))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "title");
    }
}

using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

[Collection(GatewayCollection.Name)]
public sealed class ModelsTests(GatewayFixture fixture)
{
    [Fact]
    public async Task The_model_list_holds_the_model_DialogueService_serves()
    {
        using var client = fixture.CreateClient();
        var body = await (await client.GetAsync("/v1/models")).JsonAsync();
        Assert.Equal("list", body.GetProperty("object").GetString());
        var model = Assert.Single(body.GetProperty("data").EnumerateArray());
        Assert.Equal(ScriptedDialogueService.ModelId, model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal(1_700_000_000, model.GetProperty("created").GetInt64());
        Assert.Equal("chatservices-tests", model.GetProperty("owned_by").GetString());
    }

    [Fact]
    public async Task A_model_is_found_by_id_and_an_unknown_one_is_a_404()
    {
        using var client = fixture.CreateClient();
        var found = await client.GetAsync("/v1/models/" + ScriptedDialogueService.ModelId);
        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        Assert.Equal(ScriptedDialogueService.ModelId, (await found.JsonAsync()).GetProperty("id").GetString());

        var error = await (await client.GetAsync("/v1/models/org/other-model")).AssertErrorAsync(HttpStatusCode.NotFound, "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }
}

using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.OpenAi;

/// <summary><c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the one model DialogueService serves.</summary>
public static class ModelsApi
{
    public static async Task ListModels(HttpContext http, DialogueUpstream upstream)
    {
        var model = await upstream.GetModelAsync(http.RequestAborted);
        await OpenAiJson.WriteAsync(http.Response, new ModelList { Data = [ToBody(model)] }, OpenAiJson.Context.ModelList);
    }

    public static async Task GetModel(string id, HttpContext http, DialogueUpstream upstream)
    {
        var model = await upstream.GetModelAsync(http.RequestAborted);
        if (id != model.Id) throw ApiException.ModelNotFound(id);
        await OpenAiJson.WriteAsync(http.Response, ToBody(model), OpenAiJson.Context.ModelBody);
    }

    private static ModelBody ToBody(ModelCard model) => new()
    {
        Id = model.Id,
        Created = model.Created,
        OwnedBy = string.IsNullOrEmpty(model.OwnedBy) ? "chatservices" : model.OwnedBy,
        MaxModelLen = model.ContextLength,
    };
}

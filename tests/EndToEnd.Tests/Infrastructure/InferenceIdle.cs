using ChatServices.Protos.Chat.V1;

namespace ChatServices.EndToEnd.Tests.Infrastructure;

public static class InferenceClientExtensions
{
    /// <summary>
    /// InferenceService's model info once nothing runs and no KV slot is held by a running sequence, polled every
    /// 100 ms for at most 10 s (then the last answer, for the test to assert on).
    /// </summary>
    public static async Task<ModelInfo> WaitUntilIdleAsync(this Protos.Chat.V1.Inference.InferenceClient client)
    {
        var info = await client.GetModelInfoAsync(new GetModelInfoRequest());
        for (var i = 0; i < 100 && (info.Running > 0 || info.KvCache.UsedSlots > 0); i++)
        {
            await Task.Delay(100);
            info = await client.GetModelInfoAsync(new GetModelInfoRequest());
        }
        return info;
    }
}

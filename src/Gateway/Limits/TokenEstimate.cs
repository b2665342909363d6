using System.Text;
using ChatServices.Gateway.OpenAi;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.Limits;

/// <summary>
/// What a generation may cost before it runs, for the up-front token charge: the prompt estimated from its
/// size (a token is rarely shorter than three UTF-8 bytes, so this errs high) plus n × the completion cap.
/// The real usage settles the difference once DialogueService reports it.
/// </summary>
public static class TokenEstimate
{
    private const int BytesPerToken = 3;
    private const int TemplateTokensPerMessage = 8;

    public static int ForChat(ChatRequest request)
    {
        long prompt = 0;
        foreach (var message in request.Messages)
        {
            prompt += Encoding.UTF8.GetByteCount(message.Content) / BytesPerToken + TemplateTokensPerMessage;
        }
        prompt += Encoding.UTF8.GetByteCount(request.UserMessage) / BytesPerToken + TemplateTokensPerMessage;
        prompt += Encoding.UTF8.GetByteCount(request.Prompt) / BytesPerToken;
        return Total(prompt, request.Settings);
    }

    private static int Total(long prompt, GenerationSettings? settings)
    {
        var maxTokens = settings is { MaxTokens: > 0 } ? settings.MaxTokens : GenerationSettingsMapping.DefaultMaxTokens;
        var choices = settings is null ? 1 : GenerationSettingsMapping.ChoiceCount(settings);
        return (int)Math.Min(int.MaxValue, prompt + (long)maxTokens * choices);
    }
}

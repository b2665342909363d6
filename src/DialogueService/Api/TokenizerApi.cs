using ChatServices.DialogueService.Model;
using ChatServices.DialogueService.Templates;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using Microsoft.AspNetCore.Authorization;

namespace ChatServices.DialogueService.Api;

/// <summary>chat.v1.Tokenizer: the served model's tokenizer and chat template over gRPC.</summary>
[Authorize(Policy = ServiceIdentity.ChatPolicy)]
public sealed class TokenizerApi(ServedModel model) : Tokenizer.TokenizerBase
{
    /// <summary>Longest text accepted, in characters (a guard against pathological requests; 4 MiB messages).</summary>
    public const int MaxTextLength = 1 << 21;

    public override Task<EncodeResponse> Encode(EncodeRequest request, ServerCallContext context)
    {
        RequireTextWithinLimit(request.Text, "text");
        var response = new EncodeResponse();
        response.TokenIds.AddRange(model.Tokenizer.Encode(request.Text, request.AddSpecialTokens, request.ParseSpecialTokens));
        return Task.FromResult(response);
    }

    public override Task<DecodeResponse> Decode(DecodeRequest request, ServerCallContext context)
    {
        var vocabulary = model.Tokenizer.VocabularySize;
        for (var i = 0; i < request.TokenIds.Count; i++)
        {
            var id = request.TokenIds[i];
            if ((uint)id >= (uint)vocabulary)
                throw ApiErrors.InvalidArgument("token_ids", $"token_ids[{i}] = {id} is outside the vocabulary [0, {vocabulary}).");
        }
        var ids = request.TokenIds.ToArray();
        return Task.FromResult(new DecodeResponse { Text = model.Tokenizer.Decode(ids, request.SkipSpecialTokens) });
    }

    public override Task<CountTokensResponse> CountTokens(CountTokensRequest request, ServerCallContext context)
    {
        RequireTextWithinLimit(request.Text, "text");
        return Task.FromResult(new CountTokensResponse { TokenCount = model.Tokenizer.CountTokens(request.Text, request.AddSpecialTokens) });
    }

    public override Task<ApplyChatTemplateResponse> ApplyChatTemplate(ApplyChatTemplateRequest request, ServerCallContext context)
    {
        var messages = ApiMessages.ToTemplateMessages(request.Messages, "messages");
        string prompt;
        try
        {
            prompt = model.RenderPrompt(messages, request.AddGenerationPrompt, context.CancellationToken);
        }
        catch (TemplateException e)
        {
            throw ApiErrors.InvalidArgument("messages", "The chat template could not render these messages: " + e.Message);
        }
        var response = new ApplyChatTemplateResponse { Prompt = prompt };
        if (request.Tokenize) response.TokenIds.AddRange(model.EncodePrompt(prompt));
        return Task.FromResult(response);
    }

    private static void RequireTextWithinLimit(string text, string field)
    {
        if (text.Length > MaxTextLength)
            throw ApiErrors.InvalidArgument(field, $"{field} is {text.Length} characters; at most {MaxTextLength} are accepted.");
    }
}

/// <summary>How the API reports errors: gRPC statuses whose message names the offending field.</summary>
internal static class ApiErrors
{
    public static RpcException InvalidArgument(string field, string message) =>
        new(new Status(StatusCode.InvalidArgument, message.Contains(field, StringComparison.Ordinal) ? message : $"{field}: {message}"));

    public static RpcException NotFound(string message) => new(new Status(StatusCode.NotFound, message));

    public static RpcException FailedPrecondition(string message) => new(new Status(StatusCode.FailedPrecondition, message));
}

/// <summary>Conversions between the API's chat messages and the template's.</summary>
internal static class ApiMessages
{
    private static readonly HashSet<string> Roles = ["system", "user", "assistant"];

    public static List<ChatServices.DialogueService.Templates.ChatMessage> ToTemplateMessages(
        IReadOnlyList<Protos.Chat.V1.ChatMessage> messages, string field)
    {
        var list = new List<ChatServices.DialogueService.Templates.ChatMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (!Roles.Contains(m.Role))
                throw ApiErrors.InvalidArgument(field, $"{field}[{i}].role is '{m.Role}'; expected system, user or assistant.");
            list.Add(new(m.Role, m.Content));
        }
        return list;
    }
}

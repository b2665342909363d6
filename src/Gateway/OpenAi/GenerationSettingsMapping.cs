using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// OpenAI sampling parameters → <see cref="GenerationSettings"/>, checked against the ranges OpenAI documents
/// (and the contract's own limits). Every refusal is a 400 naming the parameter.
/// </summary>
internal static class GenerationSettingsMapping
{
    public const int MaxChoices = 8;
    public const int MaxStopSequences = 4;
    public const int MaxStopLength = 64;
    public const int MaxTopLogprobs = 20;

    /// <summary>Tokens a choice may generate when the request does not say (the contract's own default cap).</summary>
    public const int DefaultMaxTokens = 1024;

    public static GenerationSettings Build(
        double? temperature, double? topP, int? maxTokens, string maxTokensParam, int? n, List<string>? stop,
        long? seed, double? presencePenalty, double? frequencyPenalty, bool logprobs, int? topLogprobs)
    {
        var settings = new GenerationSettings();

        if (temperature is { } t)
        {
            if (!(t >= 0 && t <= 2)) throw OutOfRange("temperature", t, "between 0 and 2");
            settings.Temperature = (float)t;
        }

        if (topP is { } p)
        {
            if (!(p >= 0 && p <= 1)) throw OutOfRange("top_p", p, "between 0 and 1");
            // The contract reads 0 as "unset"; OpenAI reads top_p=0 as "only the most likely token".
            settings.TopP = p == 0 ? 1e-6f : (float)p;
        }

        if (maxTokens is { } m)
        {
            if (m < 1) throw OutOfRange(maxTokensParam, m, "at least 1");
            settings.MaxTokens = m;
        }

        if (n is { } choices)
        {
            if (choices < 1 || choices > MaxChoices) throw OutOfRange("n", choices, $"between 1 and {MaxChoices}");
            settings.N = choices;
        }

        if (stop is not null)
        {
            if (stop.Count > MaxStopSequences)
            {
                throw ApiException.InvalidRequest($"'stop' holds {stop.Count} sequences; at most {MaxStopSequences} are allowed.", "stop");
            }
            foreach (var s in stop)
            {
                if (s.Length == 0 || s.Length > MaxStopLength)
                {
                    throw ApiException.InvalidRequest($"Each 'stop' sequence must be 1 to {MaxStopLength} characters long.", "stop");
                }
                settings.Stop.Add(s);
            }
        }

        if (seed is { } sd) settings.Seed = unchecked((ulong)sd);

        if (presencePenalty is { } pp)
        {
            if (!(pp >= -2 && pp <= 2)) throw OutOfRange("presence_penalty", pp, "between -2 and 2");
            settings.PresencePenalty = (float)pp;
        }

        if (frequencyPenalty is { } fp)
        {
            if (!(fp >= -2 && fp <= 2)) throw OutOfRange("frequency_penalty", fp, "between -2 and 2");
            settings.FrequencyPenalty = (float)fp;
        }

        settings.Logprobs = logprobs;
        if (topLogprobs is { } top)
        {
            if (top < 0 || top > MaxTopLogprobs) throw OutOfRange("top_logprobs", top, $"between 0 and {MaxTopLogprobs}");
            if (!logprobs && top > 0)
            {
                throw ApiException.InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs");
            }
            settings.TopLogprobs = top;
        }

        return settings;
    }

    /// <summary>
    /// A reply limit the model's context cannot hold even with an empty prompt is the limit's fault: refused here,
    /// naming the parameter as the caller wrote it (DialogueService would otherwise blame the messages).
    /// </summary>
    public static void CheckFitsContext(GenerationSettings settings, string maxTokensParam, int contextLength)
    {
        if (contextLength > 0 && settings.MaxTokens >= contextLength)
        {
            throw ApiException.InvalidRequest(
                $"Invalid value for '{maxTokensParam}': {settings.MaxTokens}. This model's context length is {contextLength} tokens, " +
                $"which must hold the prompt as well as the reply: ask for fewer than {contextLength}.", maxTokensParam, "invalid_value");
        }
    }

    /// <summary>Choices the request asks for (the contract's default is 1).</summary>
    public static int ChoiceCount(GenerationSettings settings) => settings.N == 0 ? 1 : settings.N;

    private static ApiException OutOfRange(string param, double value, string range) =>
        ApiException.InvalidRequest($"Invalid value for '{param}': {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}. It must be {range}.", param, "invalid_value");
}

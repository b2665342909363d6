using ChatServices.DialogueService.PostProcessing;

namespace ChatServices.DialogueService.Tests.PostProcessing;

public sealed class StopSequenceMatcherTests
{
    [Fact]
    public void Without_stop_strings_text_passes_straight_through()
    {
        var m = new StopSequenceMatcher([]);
        Assert.Equal("Hello", m.Push("Hello"));
        Assert.Equal("", m.Flush());
        Assert.False(m.Stopped);
    }

    [Fact]
    public void A_stop_string_split_across_pieces_is_found_and_never_released()
    {
        var m = new StopSequenceMatcher(["</answer>"]);
        var released = m.Push("The result is 42<") + m.Push("/ans") + m.Push("wer> and more");
        Assert.True(m.Stopped);
        Assert.Equal("</answer>", m.MatchedStop);
        Assert.Equal("The result is 42", released);
        Assert.Equal("", m.Push("ignored after stop"));
        Assert.Equal("", m.Flush());
    }

    [Fact]
    public void A_possible_prefix_is_held_back_then_released_when_it_turns_out_not_to_be_a_stop()
    {
        var m = new StopSequenceMatcher(["STOP"]);
        Assert.Equal("abc ", m.Push("abc ST"));
        Assert.Equal("STarted", m.Push("arted"));
        Assert.False(m.Stopped);
    }

    [Fact]
    public void Held_back_text_is_released_by_Flush_when_generation_ends_otherwise()
    {
        var m = new StopSequenceMatcher(["\n\nUser:"]);
        Assert.Equal("Bye", m.Push("Bye\n\nUs"));
        Assert.Equal("\n\nUs", m.Flush());
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var m = new StopSequenceMatcher(["world", "lo w"]);
        Assert.Equal("hel", m.Push("hello world"));
        Assert.Equal("lo w", m.MatchedStop);
    }

    [Fact]
    public void Stop_strings_with_multi_byte_characters_match()
    {
        var m = new StopSequenceMatcher(["終わり", "🙂"]);
        Assert.Equal("これで", m.Push("これで終") );
        Assert.Equal("", m.Push("わり です"));
        Assert.Equal("終わり", m.MatchedStop);
    }

    [Fact]
    public void Released_text_is_the_same_however_the_stream_is_cut()
    {
        const string text = "alpha <|end|> beta";
        var expected = "alpha ";
        for (var cut1 = 0; cut1 <= text.Length; cut1++)
        for (var cut2 = cut1; cut2 <= text.Length; cut2++)
        {
            var m = new StopSequenceMatcher(["<|end|>", "<|user|>"]);
            var released = m.Push(text[..cut1]) + m.Push(text[cut1..cut2]) + m.Push(text[cut2..]) + m.Flush();
            Assert.Equal(expected, released);
            Assert.True(m.Stopped);
        }
    }

    [Fact]
    public void Empty_stop_strings_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new StopSequenceMatcher(["ok", ""]));
    }
}

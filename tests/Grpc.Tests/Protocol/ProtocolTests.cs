using ChatServices.Grpc.Protocol;

namespace ChatServices.Grpc.Tests.Protocol;

public sealed class ProtocolTests
{
    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("1000u", 10_000L)]
    [InlineData("12345678n", 123_456L)]
    public void Timeout_header_parses_every_unit(string value, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(value, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("123456789m")]
    [InlineData("-1S")]
    [InlineData("10x")]
    public void Timeout_header_rejects_malformed_values(string value) => Assert.False(GrpcTimeout.TryParse(value, out _));

    [Fact]
    public void Timeout_is_formatted_within_8_digits_and_never_shorter()
    {
        Assert.Equal("1500m", GrpcTimeout.Format(TimeSpan.FromMilliseconds(1499.2)));
        Assert.Equal("1m", GrpcTimeout.Format(TimeSpan.FromTicks(1)));
        var days = GrpcTimeout.Format(TimeSpan.FromDays(3));
        Assert.True(GrpcTimeout.TryParse(days, out var back));
        Assert.True(back >= TimeSpan.FromDays(3));
        Assert.True(days.Length <= 9);
    }

    [Theory]
    [InlineData("plain message", "plain message")]
    [InlineData("100%", "100%25")]
    [InlineData("ä\n", "%C3%A4%0A")]
    public void Grpc_message_is_percent_encoded_and_decoded(string text, string wire)
    {
        Assert.Equal(wire, PercentEncoding.Encode(text));
        Assert.Equal(text, PercentEncoding.Decode(wire));
    }

    [Fact]
    public void Malformed_percent_escapes_are_kept_as_they_are() => Assert.Equal("50%zz%4", PercentEncoding.Decode("50%zz%4"));

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Content_type_must_be_application_grpc(string? contentType, bool expected) =>
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));

    [Fact]
    public void Binary_metadata_decodes_with_and_without_padding()
    {
        Assert.True(MetadataEncoding.TryDecodeBase64("AQI", out var unpadded));
        Assert.Equal(new byte[] { 1, 2 }, unpadded);
        Assert.True(MetadataEncoding.TryDecodeBase64("AQI=", out var padded));
        Assert.Equal(new byte[] { 1, 2 }, padded);
    }

    [Fact]
    public void Metadata_keys_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new Metadata().Add("bad key", "v"));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("x-bin", "text"));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("x-text", [1]));
        Assert.Equal("v", new Metadata().Add("X-Key", "v").GetValue("x-key"));
    }
}

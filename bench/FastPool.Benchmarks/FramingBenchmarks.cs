using System.Buffers;
using BenchmarkDotNet.Attributes;
using FastPool.Benchmarks.Infrastructure;
using FastPool.Protocol;

namespace FastPool.Benchmarks;

/// <summary>
/// <see cref="MessageFramer"/> walking whole buffers, and the readers decoding them. One operation is one
/// whole buffer: a 100-row pgbench_accounts result (102 + 1 messages, ~11.5 KB) or one extended-protocol
/// statement (Parse/Bind/Describe/Execute/Sync). Expected allocation: 0 B.
/// </summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private const int MaxLength = 1 << 30;

    private ReadOnlySequence<byte> _result;
    private ReadOnlySequence<byte> _resultSegmented;
    private ReadOnlySequence<byte> _extended;

    [GlobalSetup]
    public void Setup()
    {
        var result = WireSamples.AccountsResult(100);
        _result = new ReadOnlySequence<byte>(result);
        _resultSegmented = ChunkedSequence.Create(result, 4096);
        _extended = new ReadOnlySequence<byte>(WireSamples.ExtendedSelect());
    }

    [Benchmark(Baseline = true, Description = "Result 100 rows, 1 segment: frame")]
    public long ResultSingleSegment() => Frame(_result);

    [Benchmark(Description = "Result 100 rows, 4 KiB segments: frame")]
    public long ResultSegmented() => Frame(_resultSegmented);

    [Benchmark(Description = "Result 100 rows, 1 segment: frame + read every column")]
    public long ResultSingleSegmentDecoded() => FrameAndDecode(_result);

    [Benchmark(Description = "Result 100 rows, 4 KiB segments: frame + read every column")]
    public long ResultSegmentedDecoded() => FrameAndDecode(_resultSegmented);

    [Benchmark(Description = "Extended P/B/D/E/S: frame")]
    public long ExtendedBatch() => Frame(_extended);

    [Benchmark(Description = "Extended P/B/D/E/S: frame + read every message")]
    public long ExtendedBatchDecoded()
    {
        var reader = new SequenceReader<byte>(_extended);
        long sum = 0;
        while (MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body) == OperationStatus.Done)
        {
            switch ((FrontendCode)code)
            {
                case FrontendCode.Parse when FrontendMessageReader.TryReadParse(body, out var parse):
                    sum += parse.Query.Length + parse.ParameterTypes.Count;
                    break;
                case FrontendCode.Bind when FrontendMessageReader.TryReadBind(body, out var bind):
                    foreach (var value in bind.Parameters)
                    {
                        sum += value.Length;
                    }

                    break;
                case FrontendCode.Describe when FrontendMessageReader.TryReadDescribe(body, out var kind, out _):
                    sum += (byte)kind;
                    break;
                case FrontendCode.Execute when FrontendMessageReader.TryReadExecute(body, out _, out int maxRows):
                    sum += maxRows + 1;
                    break;
                case FrontendCode.Sync when FrontendMessageReader.IsValidEmptyBody(body):
                    sum++;
                    break;
                default:
                    throw new InvalidOperationException("unexpected message");
            }
        }

        return sum;
    }

    private static long Frame(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        long sum = 0;
        while (MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body) == OperationStatus.Done)
        {
            sum += code + body.Length;
        }

        return sum;
    }

    private static long FrameAndDecode(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        long sum = 0;
        while (MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body) == OperationStatus.Done)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.DataRow when BackendMessages.TryReadDataRow(body, out var columns):
                    foreach (var value in columns)
                    {
                        sum += value.Length;
                    }

                    break;
                case BackendCode.RowDescription when BackendMessages.TryReadRowDescription(body, out var fields):
                    foreach (var field in fields)
                    {
                        sum += field.TypeOid;
                    }

                    break;
                case BackendCode.CommandComplete when BackendMessages.TryReadCommandComplete(body, out var tag):
                    sum += tag.Length;
                    break;
                case BackendCode.ReadyForQuery:
                    sum += (byte)BackendMessageReader.ReadReadyForQuery(body);
                    break;
                default:
                    throw new InvalidOperationException("unexpected message");
            }
        }

        return sum;
    }
}

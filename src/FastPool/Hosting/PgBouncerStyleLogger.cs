using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace FastPool.Hosting;

/// <summary>
/// Log lines in PgBouncer's shape ("2026-01-01 12:00:00.000 UTC [pid] LOG message") to stderr or to logfile.
/// Lines go through a channel to one writer task, so a session never waits on the disk.
/// </summary>
internal sealed class PgBouncerStyleLoggerProvider : ILoggerProvider
{
    private readonly Channel<string> _lines = Channel.CreateBounded<string>(new BoundedChannelOptions(65536)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
    });

    private readonly TextWriter _writer;
    private readonly bool _ownsWriter;
    private readonly FileStream? _file;
    private readonly LogLevel _minimum;
    private readonly Task _pump;
    private readonly string _pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

    public PgBouncerStyleLoggerProvider(string? logFile, LogLevel minimum)
    {
        _minimum = minimum;
        if (string.IsNullOrEmpty(logFile))
        {
            _writer = Console.Error;
        }
        else
        {
            _file = new FileStream(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            _writer = new StreamWriter(_file, new UTF8Encoding(false)) { AutoFlush = false };
            _ownsWriter = true;
        }

        _pump = Task.Run(PumpAsync);
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    private void Write(LogLevel level, string message, Exception? exception)
    {
        var sb = new StringBuilder(64 + message.Length);
        sb.Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append(" UTC [").Append(_pid).Append("] ")
            .Append(level switch
            {
                LogLevel.Critical => "FATAL",
                LogLevel.Error => "ERROR",
                LogLevel.Warning => "WARNING",
                LogLevel.Information => "LOG",
                _ => "DEBUG",
            }).Append(' ').Append(message);
        if (exception is not null && level >= LogLevel.Error)
        {
            sb.Append('\n').Append(exception);
        }

        _lines.Writer.TryWrite(sb.ToString());
    }

    private async Task PumpAsync()
    {
        var reader = _lines.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // FileMode.Append only seeks to the end once, at open (.NET does not open with O_APPEND): another
            // process writing the same logfile (the successor in a rolling restart) would have its lines
            // overwritten. Each batch starts at the end as it is now; the writer's buffer is empty here.
            _file?.Seek(0, SeekOrigin.End);
            while (reader.TryRead(out var line))
            {
                await _writer.WriteLineAsync(line).ConfigureAwait(false);
            }

            await _writer.FlushAsync().ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _lines.Writer.TryComplete();
        _pump.Wait(TimeSpan.FromSeconds(2));
        if (_ownsWriter)
        {
            _writer.Dispose();
        }
    }

    private sealed class Logger(PgBouncerStyleLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                provider.Write(logLevel, formatter(state, exception), exception);
            }
        }
    }
}

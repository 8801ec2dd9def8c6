//! Byte sources: serial ports, TCP connections and plain readers.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What one read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were written to the start of the buffer.
    Data(usize),
    /// Nothing arrived within the source's poll interval; the link is still open.
    Idle,
    /// The source ended for good (end of file, peer closed the connection).
    Closed,
}

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening failed.
    #[error("cannot open {what}: {source}")]
    Open {
        /// The source.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// Reading failed (device unplugged, connection reset).
    #[error("reading {what} failed: {source}")]
    Read {
        /// The source.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// The source cannot be opened again (a stream that was consumed).
    #[error("{0} cannot be reopened")]
    NotReopenable(String),
}

/// Anything that yields protocol bytes and can be (re)opened. Implementations must return from
/// [`ByteSource::read`] within a short poll interval (tens of ms) even when no data comes, so that the reader can
/// watch for silence and for a stop request.
pub trait ByteSource: Send + 'static {
    /// A short description for logs and the status bar, e.g. `serial /dev/ttyUSB0 @ 3000000`.
    fn describe(&self) -> String;
    /// Opens (or re-opens) the source.
    fn open(&mut self) -> Result<(), SourceError>;
    /// Reads what is available into `buf`.
    fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, SourceError>;
    /// Drops the underlying handle (before a reconnect attempt).
    fn close(&mut self);
    /// True if the reader should try to re-open the source after it fails or closes (a device may come back;
    /// a file will not).
    fn reconnectable(&self) -> bool {
        true
    }
}

/// A serial port or pseudo-terminal.
pub struct SerialSource {
    path: String,
    baud: u32,
    poll: Duration,
    port: Option<Box<dyn serialport::SerialPort>>,
}

impl SerialSource {
    /// A source for the device at `path` (e.g. `/dev/ttyUSB0`, or a pty path). The baud rate matters only for
    /// real UARTs; USB CDC and ptys ignore it.
    pub fn new(path: impl Into<String>, baud: u32) -> Self {
        Self {
            path: path.into(),
            baud,
            poll: Duration::from_millis(20),
            port: None,
        }
    }
}

impl ByteSource for SerialSource {
    fn describe(&self) -> String {
        format!("serial {} @ {} baud", self.path, self.baud)
    }

    fn open(&mut self) -> Result<(), SourceError> {
        let port = serialport::new(&self.path, self.baud)
            .timeout(self.poll)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .open()
            .map_err(|e| SourceError::Open {
                what: self.describe(),
                source: e.into(),
            })?;
        // Whatever sat in the driver's buffer before we opened is stale (and may stop mid-frame): start fresh.
        if let Err(e) = port.clear(serialport::ClearBuffer::Input) {
            tracing::debug!(error = %e, "could not discard stale input");
        }
        self.port = Some(port);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, SourceError> {
        let Some(port) = self.port.as_mut() else {
            return Err(SourceError::Read {
                what: self.describe(),
                source: io::ErrorKind::NotConnected.into(),
            });
        };
        match port.read(buf) {
            Ok(0) => Ok(ReadOutcome::Idle),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                Ok(ReadOutcome::Idle)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Idle),
            Err(e) => Err(SourceError::Read {
                what: self.describe(),
                source: e,
            }),
        }
    }

    fn close(&mut self) {
        self.port = None;
    }
}

/// A TCP connection to a device or to `firmware-sim --tcp`.
pub struct TcpSource {
    addr: String,
    stream: Option<TcpStream>,
}

impl TcpSource {
    /// A source that connects to `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            stream: None,
        }
    }

    fn resolve(&self) -> io::Result<SocketAddr> {
        self.addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing"))
    }
}

impl ByteSource for TcpSource {
    fn describe(&self) -> String {
        format!("tcp {}", self.addr)
    }

    fn open(&mut self) -> Result<(), SourceError> {
        let open = || -> io::Result<TcpStream> {
            let s = TcpStream::connect_timeout(&self.resolve()?, Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            s.set_nodelay(true)?;
            Ok(s)
        };
        self.stream = Some(open().map_err(|e| SourceError::Open {
            what: self.describe(),
            source: e,
        })?);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, SourceError> {
        let Some(s) = self.stream.as_mut() else {
            return Err(SourceError::Read {
                what: self.describe(),
                source: io::ErrorKind::NotConnected.into(),
            });
        };
        match s.read(buf) {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(ReadOutcome::Idle)
            }
            Err(e) => Err(SourceError::Read {
                what: self.describe(),
                source: e,
            }),
        }
    }

    fn close(&mut self) {
        self.stream = None;
    }
}

/// Any reader (a capture file, the in-process simulator). It is opened once and not re-opened: when it ends, the
/// stream ends. A reader that returns `WouldBlock`/`TimedOut` is treated as idle.
pub struct ReaderSource<R> {
    name: String,
    reader: Option<R>,
    opened: bool,
}

impl<R: Read + Send + 'static> ReaderSource<R> {
    /// Wraps `reader`, described as `name` in logs.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        Self {
            name: name.into(),
            reader: Some(reader),
            opened: false,
        }
    }
}

impl<R: Read + Send + 'static> ByteSource for ReaderSource<R> {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self) -> Result<(), SourceError> {
        if self.opened || self.reader.is_none() {
            return Err(SourceError::NotReopenable(self.name.clone()));
        }
        self.opened = true;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, SourceError> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(ReadOutcome::Closed);
        };
        match r.read(buf) {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(ReadOutcome::Idle)
            }
            Err(e) => Err(SourceError::Read {
                what: self.name.clone(),
                source: e,
            }),
        }
    }

    fn close(&mut self) {
        self.reader = None;
    }

    fn reconnectable(&self) -> bool {
        false
    }
}

/// Serial ports the operating system knows of: (path, kind).
pub fn list_ports() -> Result<Vec<(String, String)>, SourceError> {
    let ports = serialport::available_ports().map_err(|e| SourceError::Open {
        what: "the list of serial ports".into(),
        source: e.into(),
    })?;
    Ok(ports
        .into_iter()
        .map(|p| {
            let kind = match p.port_type {
                serialport::SerialPortType::UsbPort(u) => format!(
                    "USB {:04x}:{:04x} {} {}",
                    u.vid,
                    u.pid,
                    u.manufacturer.unwrap_or_default(),
                    u.product.unwrap_or_default()
                ),
                serialport::SerialPortType::PciPort => "PCI".into(),
                serialport::SerialPortType::BluetoothPort => "Bluetooth".into(),
                serialport::SerialPortType::Unknown => "unknown".into(),
            };
            (p.port_name, kind.trim().to_owned())
        })
        .collect())
}

impl ByteSource for Box<dyn ByteSource> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn open(&mut self) -> Result<(), SourceError> {
        (**self).open()
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, SourceError> {
        (**self).read(buf)
    }
    fn close(&mut self) {
        (**self).close()
    }
    fn reconnectable(&self) -> bool {
        (**self).reconnectable()
    }
}

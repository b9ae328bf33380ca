// Tests start programs the way Kaizen does.
@_exported import ChildProcess

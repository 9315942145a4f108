//! MATLAB v5 values ([`MatValue`]) and data-type codes, shared by the reader (`mat.rs`) and the
//! writer (`mat_write.rs`); the format notes below apply to both.
//!
//! Reader support: the 128-byte v5 header (`MATLAB 5.0 MAT-file,` and the `MATLAB 5.0 MAT-file
//! Platform:` spelling of other tools), little-endian files only, `miCOMPRESSED` (zlib)
//! elements, `miMATRIX` arrays of class cell, char (stored as miUINT16, miUTF8 or miUINT8) and
//! every real numeric class (double, single, int8 … uint64, logical) with any integer or float
//! storage type (e.g. class double stored as miUINT8), the 4-byte small-element tag form,
//! 8-byte padding, empty arrays and empty `miMATRIX` elements. Big-endian files, v7.3 (HDF5)
//! files, structs, objects, sparse and complex arrays are rejected with an error naming the file
//! and byte offset.
//!
//! All numeric data is read into `f64` in column-major order (int64/uint64 values above 2^53
//! lose precision).

/// MATLAB array class of a numeric array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumericClass {
    /// `double` (mxDOUBLE_CLASS).
    Double,
    /// `single`.
    Single,
    /// `int8`.
    Int8,
    /// `uint8`.
    UInt8,
    /// `int16`.
    Int16,
    /// `uint16`.
    UInt16,
    /// `int32`.
    Int32,
    /// `uint32`.
    UInt32,
    /// `int64`.
    Int64,
    /// `uint64`.
    UInt64,
    /// `logical` (class uint8 with the logical flag).
    Logical,
}

impl NumericClass {
    /// The mxCLASS number of the class (logical is stored as uint8 = 9 with a flag).
    pub(crate) fn code(self) -> u8 {
        match self {
            NumericClass::Double => 6,
            NumericClass::Single => 7,
            NumericClass::Int8 => 8,
            NumericClass::UInt8 | NumericClass::Logical => 9,
            NumericClass::Int16 => 10,
            NumericClass::UInt16 => 11,
            NumericClass::Int32 => 12,
            NumericClass::UInt32 => 13,
            NumericClass::Int64 => 14,
            NumericClass::UInt64 => 15,
        }
    }

    pub(crate) fn from_code(code: u8, logical: bool) -> Option<Self> {
        Some(match code {
            6 => NumericClass::Double,
            7 => NumericClass::Single,
            8 => NumericClass::Int8,
            9 if logical => NumericClass::Logical,
            9 => NumericClass::UInt8,
            10 => NumericClass::Int16,
            11 => NumericClass::UInt16,
            12 => NumericClass::Int32,
            13 => NumericClass::UInt32,
            14 => NumericClass::Int64,
            15 => NumericClass::UInt64,
            _ => return None,
        })
    }
}

/// One MATLAB array. `dims` has at least two entries; data is column-major.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A real numeric or logical array; `data.len()` = product of `dims`.
    Numeric {
        /// The MATLAB class (not the storage type).
        class: NumericClass,
        /// Dimensions, e.g. `[k, 4]` for a k×4 box matrix.
        dims: Vec<usize>,
        /// Values in column-major order.
        data: Vec<f64>,
    },
    /// A char array. For a 1×n row `text` is the string; otherwise it holds the characters in
    /// column-major storage order. The element count of `dims` counts UTF-16 code units.
    Char {
        /// Dimensions, `[1, n]` for a string.
        dims: Vec<usize>,
        /// The characters.
        text: String,
    },
    /// A cell array; `items.len()` = product of `dims`, column-major.
    Cell {
        /// Dimensions, e.g. `[61, 1]`.
        dims: Vec<usize>,
        /// The cells.
        items: Vec<MatValue>,
    },
}

impl MatValue {
    /// A 1×n char row holding `text`.
    pub fn string(text: &str) -> Self {
        MatValue::Char {
            dims: vec![1, text.encode_utf16().count()],
            text: text.to_string(),
        }
    }

    /// An n×1 cell column.
    pub fn cell_column(items: Vec<MatValue>) -> Self {
        MatValue::Cell {
            dims: vec![items.len(), 1],
            items,
        }
    }

    /// The dimensions of any variant.
    pub fn dims(&self) -> &[usize] {
        match self {
            MatValue::Numeric { dims, .. } | MatValue::Char { dims, .. } => dims,
            MatValue::Cell { dims, .. } => dims,
        }
    }
}

pub(crate) const MI_INT8: u32 = 1;
pub(crate) const MI_UINT8: u32 = 2;
pub(crate) const MI_INT16: u32 = 3;
pub(crate) const MI_UINT16: u32 = 4;
pub(crate) const MI_INT32: u32 = 5;
pub(crate) const MI_UINT32: u32 = 6;
pub(crate) const MI_SINGLE: u32 = 7;
pub(crate) const MI_DOUBLE: u32 = 9;
pub(crate) const MI_INT64: u32 = 12;
pub(crate) const MI_UINT64: u32 = 13;
pub(crate) const MI_MATRIX: u32 = 14;
pub(crate) const MI_COMPRESSED: u32 = 15;
pub(crate) const MI_UTF8: u32 = 16;
pub(crate) const MI_UTF16: u32 = 17;

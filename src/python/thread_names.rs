//! Thread names: `threading.Thread.name` of every thread the `threading` module knows.
//!
//! The way there is `sys.modules["threading"].__dict__["_active"]`, a dict from
//! `threading.get_ident()` (equal to `PyThreadState.thread_id`) to the `Thread` object,
//! whose name is its instance attribute `_name` (2.7: `_Thread__name`). The `_active`
//! dict is found once per interpreter and remembered; a refresh then reads only that
//! dict, its keys, and one attribute of each `Thread`.

use std::collections::HashMap;

use super::dict::{AttributeReader, DictReader, StrKey};
use super::ints::IntReader;
use super::layout::{require, require_symbol, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use super::version::Semantics;
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory, ReadError};

/// What is known about one interpreter's `threading` module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// The address of `threading._active`.
    Active(u64),
    /// `threading` was not in `sys.modules`, whose keys were these: search again only
    /// once they change.
    NotImported(Vec<u64>),
}

/// Reads thread names, remembering where each interpreter's `_active` dict is.
#[derive(Debug, Clone)]
pub struct ThreadNameReader {
    strings: ObjectReader,
    dicts: DictReader,
    attributes: AttributeReader,
    ints: IntReader,
    /// `PyModule_Type`.
    module_type: u64,
    /// `sys.modules` in `PyInterpreterState`.
    modules: u64,
    /// `md_dict` in module objects.
    module_dict: u64,
    threading: StrKey,
    active: StrKey,
    name: StrKey,
    found: HashMap<u64, Lookup>,
}

impl ThreadNameReader {
    /// Set up from a layout and the version's rules; `strings` reads `str` objects and
    /// `binary` (the file holding the runtime) supplies the type objects to check.
    pub fn new(
        layout: &Layout,
        semantics: &Semantics,
        strings: ObjectReader,
        binary: &Binary,
    ) -> Result<ThreadNameReader, MissingField> {
        let symbol = |name| require_symbol(binary, name);
        let int_type = symbol(semantics.int_model.type_symbol())?;
        Ok(ThreadNameReader {
            strings,
            dicts: DictReader::new(layout, semantics.dict_model, symbol("PyDict_Type")?)?,
            attributes: AttributeReader::new(layout, semantics.instance_dict)?,
            ints: IntReader::new(layout, semantics.int_model, int_type)?,
            module_type: symbol("PyModule_Type")?,
            modules: require(layout.interpreter.modules, "interpreter.modules")?,
            module_dict: require(layout.module.dict, "module.dict")?,
            threading: StrKey::new("threading"),
            active: StrKey::new("_active"),
            name: StrKey::new(semantics.thread_name_attribute),
            found: HashMap::new(),
        })
    }

    /// The name of every thread of interpreter `interp` that `threading` knows, by
    /// `thread_id` (`threading.get_ident()`). Threads not (yet) in `threading._active`,
    /// and any whose name cannot be read consistently, are left out; only a failure to
    /// read the process at all is an error.
    pub fn read(
        &mut self,
        mem: &impl Memory,
        interp: u64,
    ) -> Result<HashMap<u64, String>, ReadError> {
        let items = match self.active_items(mem, interp) {
            Ok(items) => items,
            Err(ObjectError::Read(e @ (ReadError::Exited | ReadError::PermissionDenied))) => {
                return Err(e)
            }
            Err(_) => Vec::new(),
        };
        self.name.revalidate(mem, &self.strings);
        let threads: Vec<u64> = items.iter().map(|&(_, thread)| thread).collect();
        let names =
            self.attributes
                .read_each(mem, &self.dicts, &self.strings, &threads, &mut self.name);
        Ok(items
            .iter()
            .zip(names)
            .filter_map(|(&(ident, _), name)| {
                let ident = self.ints.read(mem, ident).ok()??;
                let ident = u64::try_from(ident).ok()?;
                let name = self.strings.read_str(mem, name?).ok()?;
                Some((ident, name))
            })
            .collect())
    }

    /// The (ident, Thread) pairs of `interp`'s `_active` dict: the remembered dict while
    /// it is still a dict, else a new search.
    fn active_items(
        &mut self,
        mem: &impl Memory,
        interp: u64,
    ) -> Result<Vec<(u64, u64)>, ObjectError> {
        if let Some(Lookup::Active(active)) = self.found.get(&interp) {
            if let Ok(items) = self.dicts.items(mem, *active) {
                return Ok(items);
            }
        }
        match self.find_active(mem, interp)? {
            Lookup::Active(active) => {
                self.found.insert(interp, Lookup::Active(active));
                self.dicts.items(mem, active)
            }
            not_imported => {
                self.found.insert(interp, not_imported);
                Ok(Vec::new())
            }
        }
    }

    /// Search `sys.modules["threading"].__dict__["_active"]`.
    fn find_active(&mut self, mem: &impl Memory, interp: u64) -> Result<Lookup, ObjectError> {
        let modules = mem.read_u64(interp.wrapping_add(self.modules))?;
        let items = self.dicts.items(mem, modules)?;
        let keys: Vec<u64> = items.iter().map(|&(k, _)| k).collect();
        if self.found.get(&interp) == Some(&Lookup::NotImported(keys.clone())) {
            return Ok(Lookup::NotImported(keys));
        }
        self.threading.revalidate(mem, &self.strings);
        let Some(index) = self.threading.find(mem, &self.strings, &keys) else {
            return Ok(Lookup::NotImported(keys));
        };
        let module = mem.read_vec(items[index].1, (self.module_dict + 8) as usize)?;
        if module.u64_at(self.strings.ob_type_offset()) != self.module_type {
            return Err(ObjectError::WrongType(items[index].1));
        }
        self.active.revalidate(mem, &self.strings);
        let globals = module.u64_at(self.module_dict);
        match self
            .dicts
            .lookup(mem, globals, &mut self.active, &self.strings)?
        {
            Some(active) => Ok(Lookup::Active(active)),
            // Being imported: `_active` is not set yet. Search again next time.
            None => Err(ObjectError::Corrupt(globals)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::every_table;

    #[test]
    fn every_table_has_what_names_need() {
        for (name, layout, rules) in every_table() {
            let check = |result: Result<(), MissingField>| {
                result.unwrap_or_else(|missing| panic!("{name}: {missing}"))
            };
            check(DictReader::new(&layout, rules.dict_model, 1).map(drop));
            check(AttributeReader::new(&layout, rules.instance_dict).map(drop));
            check(require(layout.interpreter.modules, "interpreter.modules").map(drop));
            check(require(layout.module.dict, "module.dict").map(drop));
        }
    }
}
